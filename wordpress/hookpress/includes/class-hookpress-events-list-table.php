<?php
/**
 * The Events screen's list (loaded only by that screen: WP_List_Table is an
 * admin class).
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * A WP_List_Table over the events table, one page at a time through
 * Hookpress_Event_Query.
 */
final class Hookpress_Events_List_Table extends WP_List_Table {

	/**
	 * Rows counted for the pagination (up to MAX_COUNT + 1).
	 *
	 * @var int
	 */
	private $total = 0;

	/**
	 * Sets the list's names (the bulk nonce is "bulk-events").
	 */
	public function __construct() {
		parent::__construct(
			array(
				'singular' => 'event',
				'plural'   => 'events',
				'ajax'     => false,
			)
		);
	}

	/**
	 * Reads the page asked for.
	 */
	public function prepare_items() {
		// phpcs:disable WordPress.Security.NonceVerification.Recommended -- filters of a read.
		$arg   = static function ( $name ) {
			return isset( $_REQUEST[ $name ] ) && is_string( $_REQUEST[ $name ] ) ? sanitize_text_field( wp_unslash( $_REQUEST[ $name ] ) ) : '';
		};
		$query = new Hookpress_Event_Query(
			array(
				'source'   => $arg( 'source' ),
				'status'   => $arg( 'status' ),
				'search'   => isset( $_REQUEST['s'] ) && is_string( $_REQUEST['s'] ) ? trim( wp_unslash( $_REQUEST['s'] ) ) : '', // phpcs:ignore WordPress.Security.ValidatedSanitizedInput.InputNotSanitized -- an exact prefix, bound as a parameter and escaped on output.
				'orderby'  => $arg( 'orderby' ),
				'order'    => $arg( 'order' ),
				'page'     => $this->get_pagenum(),
				'per_page' => $this->get_items_per_page( 'hookpress_events_per_page', 20 ),
			)
		);
		// phpcs:enable
		$this->items           = $query->rows();
		$this->total           = $query->total();
		$this->_column_headers = array( $this->get_columns(), array(), $this->get_sortable_columns(), 'external_id' );
		$this->set_pagination_args(
			array(
				'total_items' => min( $this->total, Hookpress_Event_Query::MAX_COUNT ),
				'per_page'    => $query->args()['per_page'],
			)
		);
	}

	/**
	 * Whether more rows match than were counted.
	 *
	 * @return bool
	 */
	public function is_capped() {
		return $this->total > Hookpress_Event_Query::MAX_COUNT;
	}

	/**
	 * Columns.
	 *
	 * @return string[]
	 */
	public function get_columns() {
		return array(
			'cb'          => '<input type="checkbox" />',
			'external_id' => __( 'External ID', 'hookpress' ),
			'source'      => __( 'Source', 'hookpress' ),
			'status'      => __( 'Status', 'hookpress' ),
			'occurred_at' => __( 'Occurred', 'hookpress' ),
			'received_at' => __( 'Received', 'hookpress' ),
			'post_id'     => __( 'Post', 'hookpress' ),
		);
	}

	/**
	 * Sortable columns: newest first on the first click.
	 *
	 * @return array
	 */
	protected function get_sortable_columns() {
		return array(
			'occurred_at' => array( 'occurred_at', true ),
			'received_at' => array( 'received_at', true ),
		);
	}

	/**
	 * Bulk actions.
	 *
	 * @return string[]
	 */
	protected function get_bulk_actions() {
		return Hookpress_Events_Admin::can_delete() ? array( 'delete' => __( 'Delete', 'hookpress' ) ) : array();
	}

	/**
	 * The source and status filters above the list.
	 *
	 * @param string $which top or bottom.
	 */
	protected function extra_tablenav( $which ) {
		if ( 'top' !== $which ) {
			return;
		}
		echo '<div class="alignleft actions">';
		foreach (
			array(
				'source' => array( __( 'All sources', 'hookpress' ), Hookpress_Event_Query::sources() ),
				'status' => array( __( 'All statuses', 'hookpress' ), Hookpress_Event_Query::statuses() ),
			) as $name => $filter
		) {
			// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- a filter of a read.
			$current = isset( $_REQUEST[ $name ] ) && is_string( $_REQUEST[ $name ] ) ? sanitize_text_field( wp_unslash( $_REQUEST[ $name ] ) ) : '';
			printf( '<label class="screen-reader-text" for="filter-by-%1$s">%2$s</label>', esc_attr( $name ), esc_html( $filter[0] ) );
			printf( '<select name="%1$s" id="filter-by-%1$s"><option value="">%2$s</option>', esc_attr( $name ), esc_html( $filter[0] ) );
			foreach ( $filter[1] as $value ) {
				printf( '<option value="%1$s" %2$s>%3$s</option>', esc_attr( $value ), selected( $current, $value, false ), esc_html( $value ) );
			}
			echo '</select>';
		}
		submit_button( __( 'Filter', 'hookpress' ), '', 'filter_action', false, array( 'id' => 'hookpress-filter-submit' ) );
		echo '</div>';
	}

	/**
	 * What an empty list says.
	 */
	public function no_items() {
		esc_html_e( 'No AI events match.', 'hookpress' );
	}

	/**
	 * The checkbox.
	 *
	 * @param array $item Row.
	 * @return string
	 */
	protected function column_cb( $item ) {
		return sprintf(
			'<label class="screen-reader-text" for="event-%1$d">%2$s</label><input type="checkbox" id="event-%1$d" name="event[]" value="%1$d" />',
			(int) $item['id'],
			/* translators: %s: external id */
			esc_html( sprintf( __( 'Select %s', 'hookpress' ), $item['external_id'] ) )
		);
	}

	/**
	 * The external id, linking to the event's page, with its row actions.
	 *
	 * @param array $item Row.
	 * @return string
	 */
	protected function column_external_id( $item ) {
		$url     = Hookpress_Events_Admin::url( (int) $item['id'] );
		$actions = array( 'view' => '<a href="' . esc_url( $url ) . '">' . esc_html__( 'View', 'hookpress' ) . '</a>' );
		if ( Hookpress_Events_Admin::can_delete() ) {
			$delete            = wp_nonce_url(
				add_query_arg(
					array(
						'action' => 'delete',
						'event'  => (int) $item['id'],
					),
					Hookpress_Events_Admin::url()
				),
				Hookpress_Events_Admin::DELETE_NONCE . (int) $item['id'],
				'_hookpress_nonce'
			);
			$actions['delete'] = '<a class="submitdelete" href="' . esc_url( $delete ) . '">' . esc_html__( 'Delete', 'hookpress' ) . '</a>';
		}
		return '<strong><a class="row-title" href="' . esc_url( $url ) . '"><code>' . esc_html( $item['external_id'] ) . '</code></a></strong>' . $this->row_actions( $actions );
	}

	/**
	 * When the event happened, in the site's time zone.
	 *
	 * @param array $item Row.
	 * @return string
	 */
	protected function column_occurred_at( $item ) {
		return esc_html( Hookpress_Post_Type::local_time( Hookpress_Event_Store::rfc3339_us( $item['occurred_at_us'] ) ) );
	}

	/**
	 * When this version was stored, in the site's time zone.
	 *
	 * @param array $item Row.
	 * @return string
	 */
	protected function column_received_at( $item ) {
		return esc_html( Hookpress_Post_Type::local_time( Hookpress_Event_Store::rfc3339_datetime( $item['received_at'] ) ) );
	}

	/**
	 * The post's id, or a dash.
	 *
	 * @param array $item Row.
	 * @return string
	 */
	protected function column_post_id( $item ) {
		return $item['post_id'] > 0 ? esc_html( (string) $item['post_id'] ) : '&mdash;';
	}

	/**
	 * Source, status: plain text.
	 *
	 * @param array  $item        Row.
	 * @param string $column_name Column.
	 * @return string
	 */
	protected function column_default( $item, $column_name ) {
		return isset( $item[ $column_name ] ) ? esc_html( (string) $item[ $column_name ] ) : '';
	}
}
