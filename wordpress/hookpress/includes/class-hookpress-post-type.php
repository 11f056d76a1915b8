<?php
/**
 * The ai_event post type, its meta and its list screen.
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * One ai_event post per event: the projection of its row in the events table
 * (see Hookpress_Post_Projection), while "Create a post for each event" is on.
 *
 * Events are a record of what arrived: only the ingest route writes them. In
 * wp-admin administrators can list and delete them but not edit them (a later
 * delivery would overwrite an edit anyway), and wp/v2/ai-events is read-only.
 * Its filters (external_id, source) are answered from the events table, by
 * index, never by a postmeta scan.
 */
final class Hookpress_Post_Type {

	const NAME      = 'ai_event';
	const REST_BASE = 'ai-events';

	/**
	 * Registered meta: name => REST description. The names are those under
	 * "meta" in wp/v2/ai-events; in the database each is stored under
	 * META_PREFIX . name, which keeps them apart from other plugins' keys and,
	 * starting with "_", out of the Custom Fields box without protecting the
	 * plain names for every other post type.
	 */
	const META_PREFIX = '_hookpress_';

	const META = array(
		'external_id' => 'Event id given by the provider.',
		'source'      => 'Configured source (provider) the event came from.',
		'status'      => 'Status reported by the provider.',
		'summary'     => 'Plain-text summary, sanitized.',
		'metadata'    => 'Provider metadata as a JSON object string.',
		'occurred_at' => 'When the event happened (RFC 3339, UTC).',
		'received_at' => 'When WordPress stored this version (RFC 3339, UTC).',
	);

	/**
	 * Registers hooks.
	 */
	public static function add_hooks() {
		add_action( 'init', array( __CLASS__, 'register' ) );
		add_filter( 'map_meta_cap', array( __CLASS__, 'map_meta_cap' ), 10, 4 );
		add_filter( 'rest_' . self::NAME . '_query', array( __CLASS__, 'rest_query' ), 10, 2 );
		add_filter( 'rest_' . self::NAME . '_collection_params', array( __CLASS__, 'rest_collection_params' ) );
		add_filter( 'posts_clauses', array( __CLASS__, 'source_clauses' ), 10, 2 );
		add_filter( 'manage_' . self::NAME . '_posts_columns', array( __CLASS__, 'columns' ) );
		add_action( 'manage_' . self::NAME . '_posts_custom_column', array( __CLASS__, 'render_column' ), 10, 2 );
		add_filter( 'post_row_actions', array( __CLASS__, 'row_actions' ), 10, 2 );
		add_action( 'before_delete_post', array( __CLASS__, 'forget_deleted' ), 10, 2 );
	}

	/**
	 * Registers the post type and its meta.
	 */
	public static function register() {
		register_post_type(
			self::NAME,
			array(
				'labels'                => array(
					'name'          => __( 'AI events', 'hookpress' ),
					'singular_name' => __( 'AI event', 'hookpress' ),
					'menu_name'     => __( 'AI events', 'hookpress' ),
					'all_items'     => __( 'Event posts', 'hookpress' ),
					'search_items'  => __( 'Search AI events', 'hookpress' ),
					'not_found'     => __( 'No AI events have been received yet.', 'hookpress' ),
				),
				'description'           => __( 'Webhook events delivered by hookpress.', 'hookpress' ),
				'public'                => false,
				'publicly_queryable'    => false,
				'exclude_from_search'   => true,
				'show_ui'               => true,
				// Under the Events screen's menu, which lists the table itself.
				'show_in_menu'          => Hookpress_Events_Admin::PAGE,
				'show_in_nav_menus'     => false,
				'show_in_admin_bar'     => false,
				'menu_icon'             => 'dashicons-rss',
				'has_archive'           => false,
				'rewrite'               => false,
				'query_var'             => false,
				'hierarchical'          => false,
				'delete_with_user'      => false,
				// Own capabilities: giving someone edit_posts for blog posts must
				// not give them the events. map_meta_cap turns edit_post and
				// friends into these primitives.
				'capability_type'       => array( 'ai_event', 'ai_events' ),
				'map_meta_cap'          => true,
				// No "Add New": events are created by the ingest route only.
				'capabilities'          => array( 'create_posts' => 'do_not_allow' ),
				// custom-fields is what makes wp/v2 expose the registered meta.
				'supports'              => array( 'title', 'custom-fields' ),
				'show_in_rest'          => true,
				'rest_base'             => self::REST_BASE,
				'rest_controller_class' => 'Hookpress_Events_Controller',
			)
		);

		foreach ( self::META as $name => $description ) {
			register_post_meta(
				self::NAME,
				self::meta_key( $name ),
				array(
					'type'          => 'string',
					'description'   => $description,
					'single'        => true,
					'default'       => '',
					'show_in_rest'  => array( 'name' => $name ),
					// Nobody edits event meta through the meta APIs; the ingest
					// route writes it directly.
					'auth_callback' => '__return_false',
				)
			);
		}
	}

	/**
	 * Primitive capabilities of the post type, granted to administrators.
	 *
	 * @return string[]
	 */
	public static function capabilities() {
		$object = get_post_type_object( self::NAME );
		if ( ! $object ) {
			return array();
		}
		$caps = array();
		foreach ( (array) $object->cap as $meta => $primitive ) {
			// Meta capabilities are mapped per post; "read" and do_not_allow
			// are not ours to grant or revoke.
			if ( in_array( $meta, array( 'edit_post', 'read_post', 'delete_post' ), true ) || in_array( $primitive, array( 'read', 'do_not_allow' ), true ) ) {
				continue;
			}
			$caps[ $primitive ] = true;
		}
		return array_keys( $caps );
	}

	/**
	 * Makes events read-only for everyone: no editing, no meta changes.
	 *
	 * @param string[] $caps    Primitive capabilities required.
	 * @param string   $cap     Capability being checked.
	 * @param int      $user_id User id.
	 * @param array    $args    Extra arguments; the post id first.
	 * @return string[]
	 */
	public static function map_meta_cap( $caps, $cap, $user_id, $args ) {
		if ( ! in_array( $cap, array( 'edit_post', 'edit_post_meta', 'add_post_meta', 'delete_post_meta' ), true ) || empty( $args[0] ) ) {
			return $caps;
		}
		$post = get_post( $args[0] );
		if ( $post && self::NAME === $post->post_type ) {
			return array( 'do_not_allow' );
		}
		return $caps;
	}

	/**
	 * The database meta key of a field.
	 *
	 * @param string $name Field name (a key of META).
	 * @return string
	 */
	public static function meta_key( $name ) {
		return self::META_PREFIX . $name;
	}

	/**
	 * Moves version 1's unprefixed meta keys of events to the prefixed ones.
	 *
	 * Only rows of ai_event posts are touched (a post of another type may use
	 * "status" or "source" for its own purpose). A row is renamed only when
	 * the post has no prefixed row for that field yet (a delivery running
	 * during the upgrade may have written one, which is newer); what is left
	 * of the old keys is then deleted. Each statement is atomic, and the two
	 * can run again safely.
	 */
	public static function migrate_meta_keys() {
		global $wpdb;
		$names = array_keys( self::META );
		$in    = implode( ', ', array_fill( 0, count( $names ), '%s' ) );
		// phpcs:disable WordPress.DB.PreparedSQL.InterpolatedNotPrepared, WordPress.DB.PreparedSQLPlaceholders, WordPress.DB.DirectDatabaseQuery -- table names are WordPress's; the IN list is placeholders.
		$wpdb->query(
			$wpdb->prepare(
				"UPDATE {$wpdb->postmeta} AS m
				JOIN {$wpdb->posts} AS p ON p.ID = m.post_id AND p.post_type = %s
				LEFT JOIN {$wpdb->postmeta} AS n ON n.post_id = m.post_id AND n.meta_key = CONCAT(%s, m.meta_key)
				SET m.meta_key = CONCAT(%s, m.meta_key)
				WHERE m.meta_key IN ({$in}) AND n.meta_id IS NULL",
				array_merge( array( self::NAME, self::META_PREFIX, self::META_PREFIX ), $names )
			)
		);
		$wpdb->query(
			$wpdb->prepare(
				"DELETE m FROM {$wpdb->postmeta} AS m
				JOIN {$wpdb->posts} AS p ON p.ID = m.post_id AND p.post_type = %s
				WHERE m.meta_key IN ({$in})",
				array_merge( array( self::NAME ), $names )
			)
		);
		// phpcs:enable
		// The renamed rows may sit in a persistent object cache under their old keys.
		if ( function_exists( 'wp_cache_supports' ) && wp_cache_supports( 'flush_group' ) ) {
			wp_cache_flush_group( 'post_meta' );
		} else {
			wp_cache_flush();
		}
	}

	/**
	 * Declares the external_id and source filters on wp/v2/ai-events.
	 *
	 * @param array $params Collection parameters.
	 * @return array
	 */
	public static function rest_collection_params( $params ) {
		$params['external_id'] = array(
			'description' => __( 'Limit results to the event with this external id (exact match).', 'hookpress' ),
			'type'        => 'string',
			'maxLength'   => 256,
		);
		$params['source']      = array(
			'description' => __( 'Limit results to events from this source.', 'hookpress' ),
			'type'        => 'string',
			'maxLength'   => 64,
		);
		return $params;
	}

	/**
	 * Applies the external_id and source filters through the events table.
	 *
	 * external_id: the posts of the matching rows (by the external_id or the
	 * unique index), as post__in. source: a join on the events table, added
	 * by source_clauses(). Either way postmeta is never searched.
	 *
	 * @param array           $args    WP_Query arguments.
	 * @param WP_REST_Request $request The request.
	 * @return array
	 */
	public static function rest_query( $args, $request ) {
		global $wpdb;
		$source = isset( $request['source'] ) ? (string) $request['source'] : '';
		if ( isset( $request['external_id'] ) && '' !== (string) $request['external_id'] ) {
			$table = Hookpress_Event_Store::table();
			$sql   = $wpdb->prepare( "SELECT post_id FROM {$table} WHERE external_id = %s AND post_id > 0", (string) $request['external_id'] ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
			if ( '' !== $source ) {
				$sql .= $wpdb->prepare( ' AND source = %s', $source );
			}
			$ids = array_map( 'intval', $wpdb->get_col( $sql ) ); // phpcs:ignore WordPress.DB.PreparedSQL.NotPrepared -- prepared above.
			// An empty post__in means "no restriction" to WP_Query: 0 matches nothing.
			$args['post__in'] = $ids ? $ids : array( 0 );
		} elseif ( '' !== $source ) {
			$args['hookpress_source'] = $source;
		}
		return $args;
	}

	/**
	 * Joins the events table for wp/v2/ai-events?source=.
	 *
	 * @param array    $clauses Query clauses.
	 * @param WP_Query $query   Query.
	 * @return array
	 */
	public static function source_clauses( $clauses, $query ) {
		global $wpdb;
		$source = $query->get( 'hookpress_source' );
		if ( ! is_string( $source ) || '' === $source ) {
			return $clauses;
		}
		$table             = Hookpress_Event_Store::table();
		$clauses['join']  .= " INNER JOIN {$table} AS hookpress_events ON hookpress_events.post_id = {$wpdb->posts}.ID";
		$clauses['where'] .= $wpdb->prepare( ' AND hookpress_events.source = %s', $source );
		return $clauses;
	}

	/**
	 * List-table columns.
	 *
	 * @param string[] $columns Default columns.
	 * @return string[]
	 */
	public static function columns( $columns ) {
		return array(
			'cb'                    => isset( $columns['cb'] ) ? $columns['cb'] : '<input type="checkbox" />',
			'title'                 => __( 'Event', 'hookpress' ),
			'hookpress_external_id' => __( 'External ID', 'hookpress' ),
			'hookpress_source'      => __( 'Source', 'hookpress' ),
			'hookpress_status'      => __( 'Status', 'hookpress' ),
			'hookpress_occurred'    => __( 'Occurred', 'hookpress' ),
			'hookpress_received'    => __( 'Received', 'hookpress' ),
		);
	}

	/**
	 * Renders one custom cell.
	 *
	 * @param string $column  Column key.
	 * @param int    $post_id Post id.
	 */
	public static function render_column( $column, $post_id ) {
		switch ( $column ) {
			case 'hookpress_external_id':
				echo '<code>' . esc_html( get_post_meta( $post_id, self::meta_key( 'external_id' ), true ) ) . '</code>';
				break;
			case 'hookpress_source':
				echo esc_html( get_post_meta( $post_id, self::meta_key( 'source' ), true ) );
				break;
			case 'hookpress_status':
				echo esc_html( get_post_meta( $post_id, self::meta_key( 'status' ), true ) );
				break;
			case 'hookpress_occurred':
				echo esc_html( self::local_time( get_post_meta( $post_id, self::meta_key( 'occurred_at' ), true ) ) );
				break;
			case 'hookpress_received':
				echo esc_html( self::local_time( get_post_meta( $post_id, self::meta_key( 'received_at' ), true ) ) );
				break;
		}
	}

	/**
	 * Drops "Edit"/"Quick Edit" from the list: events are read-only.
	 *
	 * @param string[] $actions Row actions.
	 * @param WP_Post  $post    Post.
	 * @return string[]
	 */
	public static function row_actions( $actions, $post ) {
		if ( self::NAME === $post->post_type ) {
			unset( $actions['edit'], $actions['inline hide-if-no-js'], $actions['view'] );
		}
		return $actions;
	}

	/**
	 * Removes the upsert index row of an event deleted in wp-admin, so the next
	 * delivery with its external id creates a fresh post.
	 *
	 * @param int     $post_id Post id.
	 * @param WP_Post $post    Post.
	 */
	public static function forget_deleted( $post_id, $post = null ) {
		if ( $post && self::NAME === $post->post_type ) {
			Hookpress_Event_Store::forget_post( (int) $post_id );
		}
	}

	/**
	 * An RFC 3339 UTC time in the site's time zone and format, for display.
	 *
	 * @param string $rfc3339 Stored value.
	 * @return string
	 */
	public static function local_time( $rfc3339 ) {
		$timestamp = $rfc3339 ? strtotime( $rfc3339 ) : false;
		if ( false === $timestamp ) {
			return (string) $rfc3339;
		}
		return wp_date( get_option( 'date_format' ) . ' ' . get_option( 'time_format' ), $timestamp );
	}
}
