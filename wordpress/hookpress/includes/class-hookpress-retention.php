<?php
/**
 * Retention: an hourly job deletes events kept longer than the setting says.
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * Prunes events (and their posts and meta) not stored again for
 * Hookpress_Settings::retention_days() days; off (0) by default.
 *
 * Age is the row's received_at: when its current version arrived, so an
 * event that keeps changing is kept, and an old event delivered late is not
 * deleted on arrival. Each run deletes in chunks (oldest first, found by the
 * received_at index) until nothing is left or its time budget is spent; then
 * it schedules itself again a minute later, so a backlog of a million rows
 * drains without one long request.
 */
final class Hookpress_Retention {

	const HOOK = 'hookpress_prune_events';

	/** Rows looked at per chunk. */
	const CHUNK = 1000;

	/** Seconds one run may spend before it hands the rest to the next. */
	const BUDGET = 20;

	/**
	 * Registers hooks.
	 */
	public static function add_hooks() {
		// No arguments: the continuation event carries one only to be told apart.
		add_action( self::HOOK, array( __CLASS__, 'prune' ), 10, 0 );
	}

	/**
	 * Deletes expired events, chunk by chunk.
	 *
	 * @param int|null $budget Seconds to spend (default BUDGET).
	 * @return int Events deleted.
	 */
	public static function prune( $budget = null ) {
		global $wpdb;
		$days = Hookpress_Settings::retention_days();
		if ( $days < 1 ) {
			return 0;
		}
		$budget  = null === $budget ? self::BUDGET : (float) $budget;
		$cutoff  = gmdate( 'Y-m-d H:i:s', time() - $days * DAY_IN_SECONDS );
		$table   = Hookpress_Event_Store::table();
		$started = microtime( true );
		$deleted = 0;
		do {
			// A read that may be stale (a replica): the delete checks the age again.
			$ids = $wpdb->get_col(
				$wpdb->prepare( "SELECT id FROM {$table} WHERE received_at < %s ORDER BY received_at LIMIT %d", $cutoff, self::CHUNK ) // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
			);
			if ( ! $ids ) {
				return $deleted;
			}
			$done = Hookpress_Event_Store::delete( $ids, $cutoff );
			if ( is_wp_error( $done ) ) {
				break;
			}
			$deleted += $done;
		} while ( microtime( true ) - $started < $budget );

		// Out of time (or the database failed): continue shortly, not in an hour.
		if ( ! wp_next_scheduled( self::HOOK, array( 'continued' ) ) ) {
			wp_schedule_single_event( time() + MINUTE_IN_SECONDS, self::HOOK, array( 'continued' ) );
		}
		return $deleted;
	}
}
