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
 * requests spend tokens strictly one after another. Time comes from the
 * database clock, the one clock every PHP process shares.
 */
final class Hookpress_Rate_Limiter {

	const BUCKET = 'ingest';

	/**
	 * Takes one token.
	 *
	 * @return true|int True when allowed, else seconds until a token is available (>= 1).
	 */
	public static function take() {
		global $wpdb;
		$table     = Hookpress_Installer::table( Hookpress_Installer::BUCKETS_TABLE );
		$burst     = (float) Hookpress_Settings::burst();
		$per_sec   = Hookpress_Settings::rate_per_minute() / 60.0;
		$available = 'LEAST(%f, tokens + GREATEST(0, UNIX_TIMESTAMP(NOW(6)) - refilled_at) * %f)';

		for ( $attempt = 0; $attempt < 2; $attempt++ ) {
			// MySQL assigns SET columns left to right, so "tokens" is computed
			// from the old refilled_at before refilled_at moves on. "spent"
			// always changes, because MySQL counts changed rows, not matched ones.
			// phpcs:disable WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- table name and expression are ours.
			$taken = $wpdb->query(
				$wpdb->prepare(
					"UPDATE {$table}
					SET tokens = {$available} - 1,
						refilled_at = GREATEST(refilled_at, UNIX_TIMESTAMP(NOW(6))),
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
			if ( 0 !== $taken || 0 === $attempt && ! self::exists() ) {
				// Missing row (first request after install) or a failed query:
				// create the row full and try once more. A failing database
				// fails closed on the second pass.
				self::ensure( $burst );
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
				"REPLACE INTO {$table} (name, tokens, refilled_at) VALUES (%s, %f, UNIX_TIMESTAMP(NOW(6)))",
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
	 */
	private static function ensure( $burst ) {
		global $wpdb;
		$table = Hookpress_Installer::table( Hookpress_Installer::BUCKETS_TABLE );
		$wpdb->query( // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
			$wpdb->prepare(
				"INSERT IGNORE INTO {$table} (name, tokens, refilled_at) VALUES (%s, %f, UNIX_TIMESTAMP(NOW(6)))",
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
	 * @return int
	 */
	private static function retry_after( $burst, $per_sec ) {
		global $wpdb;
		$table = Hookpress_Installer::table( Hookpress_Installer::BUCKETS_TABLE );
		$row   = $wpdb->get_row( // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
			$wpdb->prepare(
				"SELECT tokens, GREATEST(0, UNIX_TIMESTAMP(NOW(6)) - refilled_at) AS elapsed FROM {$table} WHERE name = %s",
				self::BUCKET
			)
		);
		if ( ! $row || $per_sec <= 0 ) {
			return 60;
		}
		$available = min( $burst, (float) $row->tokens + (float) $row->elapsed * $per_sec );
		$wait      = ( 1.0 - $available ) / $per_sec;
		return max( 1, (int) ceil( $wait ) );
	}
}
