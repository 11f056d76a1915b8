<?php
/**
 * wp-admin > AI events: the events table as a list, and one event's page.
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * The Events screen: a WP_List_Table over the events table (sort by
 * occurred_at or received_at, filter by source and status, search by
 * external id, bulk delete) and a page per event with its metadata. It reads
 * the table, not posts, so it works (and stays fast) with posts off.
 */
final class Hookpress_Events_Admin {

	const PAGE = 'hookpress-events';

	/** Nonce action of the one-event delete form (the id is appended). */
	const DELETE_NONCE = 'hookpress-delete-event-';

	/**
	 * Registers hooks.
	 */
	public static function add_hooks() {
		// Before core adds the post type's list under this menu (priority 10).
		add_action( 'admin_menu', array( __CLASS__, 'add_menu' ), 9 );
	}

	/**
	 * Whether the current user may read events (the post type's edit_posts
	 * capability: administrators, after activation).
	 *
	 * @return bool
	 */
	public static function can_read() {
		$type = get_post_type_object( Hookpress_Post_Type::NAME );
		return $type && current_user_can( $type->cap->edit_posts );
	}

	/**
	 * Whether the current user may delete events (delete_others_posts of the
	 * post type: events belong to nobody in particular).
	 *
	 * @return bool
	 */
	public static function can_delete() {
		$type = get_post_type_object( Hookpress_Post_Type::NAME );
		return $type && current_user_can( $type->cap->delete_others_posts );
	}

	/**
	 * Adds the menu; deletes are handled on load, before any output, so they
	 * can redirect.
	 */
	public static function add_menu() {
		$type = get_post_type_object( Hookpress_Post_Type::NAME );
		if ( ! $type ) {
			return;
		}
		$hook = add_menu_page(
			__( 'AI events', 'hookpress' ),
			__( 'AI events', 'hookpress' ),
			$type->cap->edit_posts,
			self::PAGE,
			array( __CLASS__, 'render' ),
			'dashicons-rss',
			26
		);
		add_action( 'load-' . $hook, array( __CLASS__, 'load' ) );
	}

	/**
	 * Handles a bulk or single delete, then redirects back (POST-redirect-GET).
	 */
	public static function load() {
		// phpcs:disable WordPress.Security.NonceVerification.Recommended -- the nonce is checked before anything changes.
		$action = isset( $_REQUEST['action'] ) ? sanitize_key( wp_unslash( $_REQUEST['action'] ) ) : '';
		if ( '-1' === $action || '' === $action ) {
			$action = isset( $_REQUEST['action2'] ) ? sanitize_key( wp_unslash( $_REQUEST['action2'] ) ) : '';
		}
		if ( 'delete' !== $action ) {
			return;
		}
		$ids = isset( $_REQUEST['event'] ) ? array_map( 'absint', (array) wp_unslash( $_REQUEST['event'] ) ) : array();
		// phpcs:enable
		if ( 1 === count( $ids ) && isset( $_REQUEST['_hookpress_nonce'] ) ) {
			check_admin_referer( self::DELETE_NONCE . $ids[0], '_hookpress_nonce' );
		} else {
			check_admin_referer( 'bulk-events' );
		}
		if ( ! self::can_delete() ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to delete AI events.', 'hookpress' ), 403 );
		}
		$deleted = Hookpress_Event_Store::delete( $ids );
		$back    = remove_query_arg( array( 'action', 'action2', 'event', '_wpnonce', '_wp_http_referer', '_hookpress_nonce', 'deleted' ), wp_get_referer() ? wp_get_referer() : self::url() );
		if ( false !== strpos( $back, 'event=' ) || false === strpos( $back, 'page=' . self::PAGE ) ) {
			$back = self::url();
		}
		wp_safe_redirect( add_query_arg( 'deleted', is_wp_error( $deleted ) ? 0 : (int) $deleted, $back ) );
		exit;
	}

	/**
	 * The screen: one event, or the list.
	 */
	public static function render() {
		if ( ! self::can_read() ) {
			return;
		}
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- a read.
		$id = isset( $_GET['event'] ) && ! is_array( $_GET['event'] ) ? absint( $_GET['event'] ) : 0;
		if ( $id > 0 ) {
			self::render_event( $id );
			return;
		}
		require_once ABSPATH . 'wp-admin/includes/class-wp-list-table.php';
		require_once __DIR__ . '/class-hookpress-events-list-table.php';
		$table = new Hookpress_Events_List_Table();
		$table->prepare_items();
		?>
		<div class="wrap">
			<h1 class="wp-heading-inline"><?php esc_html_e( 'AI events', 'hookpress' ); ?></h1>
			<hr class="wp-header-end">
			<?php
			// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- a notice.
			if ( isset( $_GET['deleted'] ) ) {
				$count = absint( $_GET['deleted'] ); // phpcs:ignore WordPress.Security.NonceVerification.Recommended
				/* translators: %s: number of events */
				echo '<div class="notice notice-success is-dismissible"><p>' . esc_html( sprintf( _n( '%s event deleted.', '%s events deleted.', $count, 'hookpress' ), number_format_i18n( $count ) ) ) . '</p></div>';
			}
			if ( $table->is_capped() ) {
				/* translators: %s: number */
				echo '<div class="notice notice-info"><p>' . esc_html( sprintf( __( 'More than %s events match: filter by source or status, or search an external id, to see the rest.', 'hookpress' ), number_format_i18n( Hookpress_Event_Query::MAX_COUNT ) ) ) . '</p></div>';
			}
			?>
			<form method="get">
				<input type="hidden" name="page" value="<?php echo esc_attr( self::PAGE ); ?>" />
				<?php
				$table->search_box( __( 'Search external IDs', 'hookpress' ), 'hookpress-event' );
				$table->display();
				?>
			</form>
		</div>
		<?php
	}

	/**
	 * One event: every field, the metadata pretty-printed, and a delete button.
	 *
	 * @param int $id Row id.
	 */
	private static function render_event( $id ) {
		$row = Hookpress_Event_Store::find( $id );
		echo '<div class="wrap">';
		echo '<h1>' . esc_html__( 'AI event', 'hookpress' ) . '</h1>';
		echo '<p><a href="' . esc_url( self::url() ) . '">&larr; ' . esc_html__( 'All AI events', 'hookpress' ) . '</a></p>';
		if ( null === $row ) {
			echo '<p>' . esc_html__( 'No event has this id (it may have been deleted).', 'hookpress' ) . '</p></div>';
			return;
		}
		$metadata = json_decode( (string) $row['metadata'] );
		$fields   = array(
			__( 'ID', 'hookpress' )          => (string) $row['id'],
			__( 'External ID', 'hookpress' ) => $row['external_id'],
			__( 'Source', 'hookpress' )      => $row['source'],
			__( 'Status', 'hookpress' )      => $row['status'],
			__( 'Occurred', 'hookpress' )    => Hookpress_Event_Store::rfc3339_us( $row['occurred_at_us'] ),
			__( 'Received', 'hookpress' )    => Hookpress_Event_Store::rfc3339_datetime( $row['received_at'] ),
			__( 'Post', 'hookpress' )        => $row['post_id'] > 0 ? (string) $row['post_id'] : '—',
			__( 'Summary', 'hookpress' )     => $row['summary'],
		);
		echo '<table class="widefat striped hookpress-event"><tbody>';
		foreach ( $fields as $label => $value ) {
			echo '<tr><th scope="row">' . esc_html( $label ) . '</th><td>' . esc_html( $value ) . '</td></tr>';
		}
		echo '<tr><th scope="row">' . esc_html__( 'Metadata', 'hookpress' ) . '</th><td><pre class="hookpress-metadata">'
			. esc_html( (string) wp_json_encode( is_object( $metadata ) ? $metadata : new stdClass(), JSON_PRETTY_PRINT | JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE ) )
			. '</pre></td></tr>';
		echo '</tbody></table>';
		if ( self::can_delete() ) {
			echo '<form method="post" action="' . esc_url( self::url() ) . '">';
			echo '<input type="hidden" name="action" value="delete" /><input type="hidden" name="event[]" value="' . esc_attr( (string) $row['id'] ) . '" />';
			wp_nonce_field( self::DELETE_NONCE . $row['id'], '_hookpress_nonce' );
			submit_button( __( 'Delete this event', 'hookpress' ), 'delete', 'submit', false );
			echo '</form>';
		}
		echo '</div>';
	}

	/**
	 * URL of the screen, or of one event.
	 *
	 * @param int $id Row id (0 for the list).
	 * @return string
	 */
	public static function url( $id = 0 ) {
		$args = array( 'page' => self::PAGE );
		if ( $id > 0 ) {
			$args['event'] = (int) $id;
		}
		return add_query_arg( $args, admin_url( 'admin.php' ) );
	}
}
