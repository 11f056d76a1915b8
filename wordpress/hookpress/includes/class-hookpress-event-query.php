<?php
/**
 * Reading the events table: the Events screen and ai-guy/v1/events share it.
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * One page of events, filtered and sorted, each query answered by an index.
 *
 * Filters: source, status, external_id (exact) and search (a prefix of the
 * external id); order: occurred_at or received_at, then id, either way. Each
 * combination has an index that both filters and orders (see
 * Hookpress_Installer::create_tables()), so the first page costs the same at
 * a thousand events and at a million.
 *
 * Counting every match would not: COUNT(*) reads each matching row. The
 * total is therefore counted up to MAX_COUNT and reported as "more than"
 * beyond it (as the Events screen and the X-WP-Total header say).
 */
final class Hookpress_Event_Query {

	/** Matches counted at most; beyond this the total is "more than MAX_COUNT". */
	const MAX_COUNT = 10000;

	const ORDERBY = array(
		'occurred_at' => 'occurred_at_us',
		'received_at' => 'received_at',
	);

	/**
	 * Normalized arguments.
	 *
	 * @var array
	 */
	private $args;

	/**
	 * Builds a query.
	 *
	 * @param array $args {
	 *     @type string $source      Exact source.
	 *     @type string $status      Exact status.
	 *     @type string $external_id Exact external id.
	 *     @type string $search      Prefix of the external id.
	 *     @type string $orderby     occurred_at (default) or received_at.
	 *     @type string $order       desc (default) or asc.
	 *     @type int    $page        1-based page.
	 *     @type int    $per_page    Rows per page (1-100).
	 * }
	 */
	public function __construct( array $args ) {
		$text       = static function ( $key ) use ( $args ) {
			return isset( $args[ $key ] ) && is_scalar( $args[ $key ] ) ? (string) $args[ $key ] : '';
		};
		$this->args = array(
			'source'      => $text( 'source' ),
			'status'      => $text( 'status' ),
			'external_id' => $text( 'external_id' ),
			'search'      => $text( 'search' ),
			'orderby'     => isset( self::ORDERBY[ $text( 'orderby' ) ] ) ? $text( 'orderby' ) : 'occurred_at',
			'order'       => 'asc' === strtolower( $text( 'order' ) ) ? 'ASC' : 'DESC',
			'page'        => max( 1, (int) ( isset( $args['page'] ) ? $args['page'] : 1 ) ),
			'per_page'    => max( 1, min( 100, (int) ( isset( $args['per_page'] ) ? $args['per_page'] : 20 ) ) ),
		);
	}

	/**
	 * The page's rows (Hookpress_Event_Store::COLUMNS).
	 *
	 * @return array[]
	 */
	public function rows() {
		global $wpdb;
		$table   = Hookpress_Event_Store::table();
		$columns = Hookpress_Event_Store::COLUMNS;
		$column  = self::ORDERBY[ $this->args['orderby'] ];
		$order   = $this->args['order'];
		$offset  = ( $this->args['page'] - 1 ) * $this->args['per_page'];
		// phpcs:disable WordPress.DB.PreparedSQL -- table, columns and direction are ours; the WHERE clause is prepared.
		$rows = $wpdb->get_results(
			"SELECT {$columns} FROM {$table}{$this->hint()} WHERE {$this->where()}
			ORDER BY {$column} {$order}, id {$order}
			LIMIT {$offset}, {$this->args['per_page']}",
			ARRAY_A
		);
		// phpcs:enable
		foreach ( $rows as &$row ) {
			foreach ( array( 'id', 'occurred_at_us', 'post_id' ) as $int ) {
				$row[ $int ] = (int) $row[ $int ];
			}
		}
		return $rows;
	}

	/**
	 * Matching rows, counted up to MAX_COUNT + 1 (more than MAX_COUNT when so).
	 *
	 * @return int
	 */
	public function total() {
		global $wpdb;
		$table = Hookpress_Event_Store::table();
		$limit = self::MAX_COUNT + 1;
		// phpcs:ignore WordPress.DB.PreparedSQL -- table is ours; the WHERE clause is prepared.
		return (int) $wpdb->get_var( "SELECT COUNT(*) FROM (SELECT 1 FROM {$table}{$this->hint()} WHERE {$this->where()} LIMIT {$limit}) AS capped" );
	}

	/**
	 * The normalized arguments.
	 *
	 * @return array
	 */
	public function args() {
		return $this->args;
	}

	/**
	 * Sources present in the table (for a filter menu), by index.
	 *
	 * @return string[]
	 */
	public static function sources() {
		return self::distinct( 'source' );
	}

	/**
	 * Statuses present in the table (for a filter menu), by index.
	 *
	 * @return string[]
	 */
	public static function statuses() {
		return self::distinct( 'status' );
	}

	/**
	 * The WHERE clause, prepared.
	 *
	 * @return string
	 */
	private function where() {
		global $wpdb;
		$where = array( '1=1' );
		foreach ( array( 'source', 'status', 'external_id' ) as $column ) {
			if ( '' !== $this->args[ $column ] ) {
				$where[] = $wpdb->prepare( "{$column} = %s", $this->args[ $column ] ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- column names are ours.
			}
		}
		if ( '' !== $this->args['search'] ) {
			$where[] = $wpdb->prepare( 'external_id LIKE %s', $wpdb->esc_like( $this->args['search'] ) . '%' );
		}
		return implode( ' AND ', $where );
	}

	/**
	 * An index hint for lookups by external id: with a LIMIT and an ORDER BY
	 * another index could serve, MariaDB may walk that index instead, which
	 * is a scan when the id matches few rows (it always does).
	 *
	 * @return string
	 */
	private function hint() {
		if ( '' === $this->args['external_id'] && '' === $this->args['search'] ) {
			return '';
		}
		return '' !== $this->args['source'] && '' !== $this->args['external_id']
			? ' FORCE INDEX (source_external_id)'
			: ' FORCE INDEX (external_id)';
	}

	/**
	 * Distinct values of an indexed column (a loose index scan), at most 200.
	 *
	 * @param string $column source or status.
	 * @return string[]
	 */
	private static function distinct( $column ) {
		global $wpdb;
		$table = Hookpress_Event_Store::table();
		return $wpdb->get_col( "SELECT DISTINCT {$column} FROM {$table} ORDER BY {$column} LIMIT 200" ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
	}
}
