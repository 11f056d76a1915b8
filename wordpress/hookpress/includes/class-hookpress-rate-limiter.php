<?php
/**
 * A token bucket that holds under concurrency.
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * The ingest route's token bucket, kept in one database row.
 *
 * A transient get-check-set lets every concurrent request read the same count
 * before any of them writes it back, so a limit of ten lets through as many
 * requests as there are PHP workers, times however often they race. Here the
 * refill, the check and the spend are one conditional UPDATE: InnoDB locks the
 * row and re-evaluates the WHERE clause on the latest version, so concurrent
 * requests spend tokens strictly one after another.
 *
 * Time comes from the database clock, the one clock every PHP process
 * shares, read as UTC (NOW_SQL). UNIX_TIMESTAMP(NOW(6)) would pass through
 * the connection's time zone: NOW() is local time there, and in the hour a
 * daylight-saving zone repeats in autumn UNIX_TIMESTAMP() maps the second
 * 01:10 to the first one, so the clock jumps back an hour and the bucket
 * stops refilling for that hour. UTC has no such hour.
 */
final class Hookpress_Rate_Limiter {

	const BUCKET = 'ingest';

	/** Seconds since the epoch, with microseconds, whatever the session's time zone. */
	const NOW_SQL = "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) * 0.000001)";

	/**
	 * Takes one token.
	 *
	 * @return true|int|WP_Error True when allowed, else seconds until a token
	 *                           is available (>= 1), or a 503 error when the
	 *                           bucket cannot be read or written.
	 */
	public static function take() {
		global $wpdb;
		$table     = Hookpress_Installer::table( Hookpress_Installer::BUCKETS_TABLE );
		$burst     = (float) Hookpress_Settings::burst();
		$per_sec   = Hookpress_Settings::rate_per_minute() / 60.0;
		$now       = self::NOW_SQL;
		$available = "LEAST(%f, tokens + GREATEST(0, {$now} - refilled_at) * %f)";

		for ( $attempt = 0; $attempt < 2; $attempt++ ) {
			// MySQL assigns SET columns left to right, so "tokens" is computed
			// from the old refilled_at before refilled_at moves on. "spent"
			// always changes, because MySQL counts changed rows, not matched ones.
			// phpcs:disable WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- table name and expression are ours.
			$taken = $wpdb->query(
				$wpdb->prepare(
					"UPDATE {$table}
					SET tokens = {$available} - 1,
						refilled_at = GREATEST(refilled_at, {$now}),
						spent = spent + 1
					WHERE name = %s AND {$available} >= 1",
					$burst,
					$per_sec,
					self::BUCKET,
					$burst,
					$per_sec
				)
			);
			// phpcs:enable
			if ( 1 === $taken ) {
				return true;
			}
			if ( 0 !== $taken ) {
				// The database failed: not the caller's fault, and no reason to
				// let it through either.
				return self::unavailable();
			}
			if ( 0 === $attempt && ! self::exists() ) {
				// Missing row (first request after install): create it full
				// and try once more.
				if ( false === self::ensure( $burst ) ) {
					return self::unavailable();
				}
				continue;
			}
			break;
		}
		return self::retry_after( $burst, $per_sec );
	}

	/**
	 * Refills the bucket to the configured burst (after the limits change).
	 */
	public static function reset() {
		global $wpdb;
		$table = Hookpress_Installer::table( Hookpress_Installer::BUCKETS_TABLE );
		$wpdb->query( // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- table name is ours.
			$wpdb->prepare(
				"REPLACE INTO {$table} (name, tokens, refilled_at) VALUES (%s, %f, " . self::NOW_SQL . ')',
				self::BUCKET,
				(float) Hookpress_Settings::burst()
			)
		);
	}

	/**
	 * Whether the bucket row exists.
	 *
	 * @return bool
	 */
	private static function exists() {
		global $wpdb;
		$table = Hookpress_Installer::table( Hookpress_Installer::BUCKETS_TABLE );
		return null !== $wpdb->get_var( $wpdb->prepare( "SELECT name FROM {$table} WHERE name = %s", self::BUCKET ) ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
	}

	/**
	 * Creates the bucket row, full, unless another request just did.
	 *
	 * @param float $burst Bucket size.
	 * @return int|false Rows inserted, false when the database failed.
	 */
	private static function ensure( $burst ) {
		global $wpdb;
		$table = Hookpress_Installer::table( Hookpress_Installer::BUCKETS_TABLE );
		return $wpdb->query( // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
			$wpdb->prepare(
				"INSERT IGNORE INTO {$table} (name, tokens, refilled_at) VALUES (%s, %f, " . self::NOW_SQL . ')',
				self::BUCKET,
				$burst
			)
		);
	}

	/**
	 * Seconds until one token will be available, rounded up, at least 1.
	 *
	 * Read without a lock: it is advice for the caller, not a grant.
	 *
	 * @param float $burst   Bucket size.
	 * @param float $per_sec Refill rate.
	 * @return int|WP_Error
	 */
	private static function retry_after( $burst, $per_sec ) {
		global $wpdb;
		$table = Hookpress_Installer::table( Hookpress_Installer::BUCKETS_TABLE );
		$now   = self::NOW_SQL;
		$row   = $wpdb->get_row( // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
			$wpdb->prepare(
				"SELECT tokens, GREATEST(0, {$now} - refilled_at) AS elapsed FROM {$table} WHERE name = %s",
				self::BUCKET
			)
		);
		if ( ! $row ) {
			return self::unavailable();
		}
		if ( $per_sec <= 0 ) {
			return 60;
		}
		$available = min( $burst, (float) $row->tokens + (float) $row->elapsed * $per_sec );
		$wait      = ( 1.0 - $available ) / $per_sec;
		return max( 1, (int) ceil( $wait ) );
	}

	/**
	 * The error when the bucket cannot be used: 503, retry later. The
	 * database's own words stay in the error log.
	 *
	 * @return WP_Error
	 */
	private static function unavailable() {
		return new WP_Error(
			'hookpress_storage_unavailable',
			__( 'The rate limiter is unavailable; retry later.', 'hookpress' ),
			array(
				'status'      => 503,
				'retry_after' => 5,
			)
		);
	}
}
