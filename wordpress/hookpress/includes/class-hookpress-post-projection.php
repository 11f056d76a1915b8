<?php
/**
 * The ai_event post of an event: a projection of its row.
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * Writes an event's row into its ai_event post and meta ("Create a post for
 * each event", on by default).
 *
 * Called inside the upsert's transaction, while that transaction holds the
 * row's lock: projections of one event therefore happen one after another,
 * in the order their versions won, and the post always shows the row's
 * winning version. The projection is written from the row, never from the
 * request. It only ever writes: which post belongs to the event is the
 * row's post_id, never a lookup in postmeta.
 */
final class Hookpress_Post_Projection {

	/**
	 * Posts created by the current transaction (their cache entries must go
	 * if it rolls back).
	 *
	 * @var int[]
	 */
	private static $created = array();

	/**
	 * The transaction committed: its posts are real.
	 */
	public static function committed() {
		self::$created = array();
	}

	/**
	 * The transaction rolled back: the object cache forgets its posts.
	 */
	public static function forget_created() {
		foreach ( self::$created as $post_id ) {
			clean_post_cache( $post_id );
		}
		self::$created = array();
	}

	/**
	 * Brings the post in step with the row; creates it when the row has none.
	 *
	 * @param array  $row    The event's row (Hookpress_Event_Store::COLUMNS).
	 * @param string $result What the upsert did.
	 * @return int|WP_Error Post id.
	 */
	public static function sync( array $row, $result ) {
		$post_id = (int) $row['post_id'];
		if ( 0 === $post_id ) {
			// New, or stored while posts were off.
			return self::create( $row );
		}
		if ( Hookpress_Event_Store::UPDATED !== $result ) {
			return $post_id;
		}
		$updated = self::update( $post_id, $row );
		if ( is_wp_error( $updated ) && 'invalid_post' === $updated->get_error_code() ) {
			// Removed behind WordPress's back (by SQL, so no hook unlinked it).
			return self::create( $row );
		}
		return $updated;
	}

	/**
	 * Creates the post and links the row to it.
	 *
	 * @param array $row Row.
	 * @return int|WP_Error
	 */
	private static function create( array $row ) {
		$post_id = wp_insert_post(
			wp_slash(
				array(
					'post_type'    => Hookpress_Post_Type::NAME,
					'post_status'  => 'publish',
					// Unique by construction: no slug-collision loop, whatever the ids look like.
					'post_name'    => 'hookpress-event-' . $row['id'],
					'post_title'   => self::title( $row ),
					'post_content' => $row['summary'],
				)
			),
			true
		);
		if ( is_wp_error( $post_id ) || ! $post_id ) {
			return Hookpress_Event_Store::failed();
		}
		self::$created[] = (int) $post_id;
		foreach ( self::meta( $row ) as $key => $value ) {
			// add, not update: a new post has no meta, and add does not read first.
			if ( ! add_post_meta( $post_id, $key, wp_slash( $value ) ) ) {
				return Hookpress_Event_Store::failed();
			}
		}
		Hookpress_Event_Store::step( 'projected' );
		$linked = Hookpress_Event_Store::link_post( $row['id'], $post_id );
		return is_wp_error( $linked ) ? $linked : (int) $post_id;
	}

	/**
	 * Rewrites the post with the row's new version. The post status stays:
	 * an event an administrator trashed stays in the trash.
	 *
	 * @param int   $post_id Post id.
	 * @param array $row     Row.
	 * @return int|WP_Error
	 */
	private static function update( $post_id, array $row ) {
		global $wpdb;
		$updated = wp_update_post(
			wp_slash(
				array(
					'ID'           => $post_id,
					'post_title'   => self::title( $row ),
					'post_content' => $row['summary'],
				)
			),
			true
		);
		if ( is_wp_error( $updated ) ) {
			return 'invalid_post' === $updated->get_error_code() ? $updated : Hookpress_Event_Store::failed();
		}
		foreach ( self::meta( $row ) as $key => $value ) {
			// update_post_meta() answers false both for "failed" and for "same
			// value": the connection's error number tells which.
			update_post_meta( $post_id, $key, wp_slash( $value ) );
			if ( $wpdb->dbh instanceof mysqli && 0 !== mysqli_errno( $wpdb->dbh ) ) {
				return Hookpress_Event_Store::failed();
			}
		}
		Hookpress_Event_Store::step( 'projected' );
		return (int) $post_id;
	}

	/**
	 * Post title.
	 *
	 * @param array $row Row.
	 * @return string
	 */
	private static function title( array $row ) {
		return $row['source'] . ': ' . $row['external_id'];
	}

	/**
	 * The post's meta, by meta key.
	 *
	 * @param array $row Row.
	 * @return array<string, string>
	 */
	private static function meta( array $row ) {
		$values = array(
			'external_id' => $row['external_id'],
			'source'      => $row['source'],
			'status'      => $row['status'],
			'summary'     => $row['summary'],
			'metadata'    => $row['metadata'],
			'occurred_at' => Hookpress_Event_Store::rfc3339_us( $row['occurred_at_us'] ),
			'received_at' => Hookpress_Event_Store::rfc3339_datetime( $row['received_at'] ),
		);
		$meta = array();
		foreach ( $values as $name => $value ) {
			$meta[ Hookpress_Post_Type::meta_key( $name ) ] = (string) $value;
		}
		return $meta;
	}
}
