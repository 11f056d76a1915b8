<?php
/**
 * Idempotency-Key: the first response to a key is the response to every retry.
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * Stores the first response per Idempotency-Key and replays it.
 *
 * A key is claimed by inserting its row (the primary key makes exactly one
 * concurrent insert win); the winner processes the request and stores the
 * response, everyone else sees the row: "in flight" until it is done, the
 * stored response after. Keys are scoped to the authenticated user.
 */
final class Hookpress_Idempotency {

	const PURGE_HOOK = 'hookpress_purge_idempotency';

	/** How long a stored response is replayed. */
	const TTL = DAY_IN_SECONDS;

	/**
	 * A claim older than this is taken to belong to a request that died
	 * (fatal error, killed worker) and may be taken over; otherwise that key
	 * would answer 409 until it expired.
	 */
	const ABANDONED_AFTER = 60;

	const CLAIMED   = 'claimed';
	const REPLAY    = 'replay';
	const IN_FLIGHT = 'in_flight';
	const MISMATCH  = 'mismatch';

	/**
	 * The row key for a user's Idempotency-Key.
	 *
	 * @param int    $user_id User id.
	 * @param string $key     Header value.
	 * @return string
	 */
	public static function key_hash( $user_id, $key ) {
		return hash( 'sha256', (int) $user_id . "\n" . $key );
	}

	/**
	 * Tries to claim a key for this request.
	 *
	 * @param string $key_hash     From key_hash().
	 * @param string $request_hash Hash of the request body.
	 * @return array{state: string, status?: int, body?: mixed}|WP_Error
	 */
	public static function claim( $key_hash, $request_hash ) {
		global $wpdb;
		$table = Hookpress_Installer::table( Hookpress_Installer::IDEMPOTENCY_TABLE );

		for ( $attempt = 0; $attempt < 2; $attempt++ ) {
			// phpcs:disable WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- table name is ours.
			$inserted = $wpdb->query(
				$wpdb->prepare(
					"INSERT IGNORE INTO {$table} (key_hash, request_hash, state, status_code, response, created_at, expires_at)
					VALUES (%s, %s, 'pending', 0, NULL, UTC_TIMESTAMP(), UTC_TIMESTAMP() + INTERVAL %d SECOND)",
					$key_hash,
					$request_hash,
					self::TTL
				)
			);
			if ( false === $inserted ) {
				return self::storage_error();
			}
			if ( 1 === $inserted ) {
				return array( 'state' => self::CLAIMED );
			}

			// Expired rows and abandoned claims are taken over in one
			// conditional UPDATE, so two retries cannot both take them.
			$taken = $wpdb->query(
				$wpdb->prepare(
					"UPDATE {$table}
					SET request_hash = %s, state = 'pending', status_code = 0, response = NULL,
						created_at = UTC_TIMESTAMP(), expires_at = UTC_TIMESTAMP() + INTERVAL %d SECOND
					WHERE key_hash = %s
						AND ( expires_at < UTC_TIMESTAMP()
							OR ( state = 'pending' AND created_at < UTC_TIMESTAMP() - INTERVAL %d SECOND ) )",
					$request_hash,
					self::TTL,
					$key_hash,
					self::ABANDONED_AFTER
				)
			);
			if ( 1 === $taken ) {
				return array( 'state' => self::CLAIMED );
			}

			$row = $wpdb->get_row(
				$wpdb->prepare( "SELECT request_hash, state, status_code, response FROM {$table} WHERE key_hash = %s", $key_hash )
			);
			// phpcs:enable
			if ( ! $row ) {
				// Released between our insert and our read: try again.
				continue;
			}
			if ( ! hash_equals( $row->request_hash, $request_hash ) ) {
				return array( 'state' => self::MISMATCH );
			}
			if ( 'done' === $row->state ) {
				return array(
					'state'  => self::REPLAY,
					'status' => (int) $row->status_code,
					'body'   => json_decode( (string) $row->response, true ),
				);
			}
			return array( 'state' => self::IN_FLIGHT );
		}
		return array( 'state' => self::IN_FLIGHT );
	}

	/**
	 * Stores the response of a claimed key.
	 *
	 * @param string $key_hash Key.
	 * @param int    $status   HTTP status.
	 * @param mixed  $body     Response data.
	 */
	public static function complete( $key_hash, $status, $body ) {
		global $wpdb;
		$wpdb->update(
			Hookpress_Installer::table( Hookpress_Installer::IDEMPOTENCY_TABLE ),
			array(
				'state'       => 'done',
				'status_code' => (int) $status,
				'response'    => wp_json_encode( $body ),
			),
			array(
				'key_hash' => $key_hash,
				'state'    => 'pending',
			),
			array( '%s', '%d', '%s' ),
			array( '%s', '%s' )
		);
	}

	/**
	 * Gives a claimed key back, so a retry runs the request again. Used when the
	 * request failed in a way worth retrying: storing that failure would turn
	 * a transient error into a permanent answer.
	 *
	 * @param string $key_hash Key.
	 */
	public static function release( $key_hash ) {
		global $wpdb;
		$wpdb->delete(
			Hookpress_Installer::table( Hookpress_Installer::IDEMPOTENCY_TABLE ),
			array(
				'key_hash' => $key_hash,
				'state'    => 'pending',
			),
			array( '%s', '%s' )
		);
	}

	/**
	 * Deletes expired keys (daily cron).
	 */
	public static function purge_expired() {
		global $wpdb;
		$table = Hookpress_Installer::table( Hookpress_Installer::IDEMPOTENCY_TABLE );
		do {
			$deleted = $wpdb->query( "DELETE FROM {$table} WHERE expires_at < UTC_TIMESTAMP() LIMIT 1000" ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
		} while ( $deleted > 0 );
	}

	/**
	 * The error when the table cannot be used.
	 *
	 * @return WP_Error
	 */
	private static function storage_error() {
		// 503, not 500: the database may recover, and the caller retries 503.
		// The database's words stay in the error log, whatever WP_DEBUG says.
		return new WP_Error(
			'hookpress_storage_unavailable',
			__( 'The event store is unavailable; retry later.', 'hookpress' ),
			array(
				'status'      => 503,
				'retry_after' => 5,
			)
		);
	}
}
