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
 * A key is claimed inside the request's transaction (see
 * Hookpress_Event_Store::transaction()): an INSERT ... ON DUPLICATE KEY
 * UPDATE takes the key's row under an exclusive lock, new or not. Another
 * request with the same key waits at that statement until the first one's
 * transaction ends, then finds its stored response and replays it. The
 * response is stored in the same transaction as the event, so a request that
 * fails or dies leaves no claim behind: its retry runs again at once. Keys
 * are scoped to the authenticated user.
 */
final class Hookpress_Idempotency {

	const PURGE_HOOK = 'hookpress_purge_idempotency';

	/** How long a stored response is replayed. */
	const TTL = DAY_IN_SECONDS;

	/** Marks a replayed response. */
	const REPLAYED_HEADER = 'Idempotent-Replayed';

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
	 * Claims a key for this request, or answers with what is stored for it.
	 * Runs inside the request's transaction.
	 *
	 * @param string $key_hash     From key_hash().
	 * @param string $request_hash Hash of the request body.
	 * @return true|WP_REST_Response|WP_Error True when claimed; the stored
	 *                                        response to replay; or an error
	 *                                        (422 reused with another body, 503).
	 */
	public static function claim( $key_hash, $request_hash ) {
		global $wpdb;
		$table = Hookpress_Installer::table( Hookpress_Installer::IDEMPOTENCY_TABLE );
		// phpcs:disable WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- table name is ours.
		$locked = $wpdb->query(
			$wpdb->prepare(
				"INSERT INTO {$table} (key_hash, request_hash, state, status_code, response, created_at, expires_at)
				VALUES (%s, %s, 'pending', 0, NULL, UTC_TIMESTAMP(), UTC_TIMESTAMP() + INTERVAL %d SECOND)
				ON DUPLICATE KEY UPDATE key_hash = key_hash",
				$key_hash,
				$request_hash,
				self::TTL
			)
		);
		$row    = false === $locked ? null : $wpdb->get_row(
			$wpdb->prepare(
				"SELECT request_hash, state, status_code, response, expires_at < UTC_TIMESTAMP() AS expired
				FROM {$table} WHERE key_hash = %s FOR UPDATE",
				$key_hash
			)
		);
		// phpcs:enable
		if ( ! $row ) {
			return self::storage_error();
		}
		Hookpress_Event_Store::step( 'claimed' );

		// "pending" is this transaction's own new row (another request's would
		// still be locked), or a claim an older version left by dying.
		if ( 'pending' === $row->state || '1' === (string) $row->expired ) {
			if ( 'pending' !== $row->state || ! hash_equals( $row->request_hash, $request_hash ) ) {
				$taken = $wpdb->query(
					$wpdb->prepare(
						"UPDATE {$table} SET request_hash = %s, state = 'pending', status_code = 0, response = NULL,
							created_at = UTC_TIMESTAMP(), expires_at = UTC_TIMESTAMP() + INTERVAL %d SECOND
						WHERE key_hash = %s", // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
						$request_hash,
						self::TTL,
						$key_hash
					)
				);
				if ( false === $taken ) {
					return self::storage_error();
				}
			}
			return true;
		}
		if ( ! hash_equals( $row->request_hash, $request_hash ) ) {
			return new WP_Error( 'hookpress_idempotency_key_reused', __( 'This Idempotency-Key was used with a different request body.', 'hookpress' ), array( 'status' => 422 ) );
		}
		$response = new WP_REST_Response( json_decode( (string) $row->response, true ), (int) $row->status_code );
		$response->header( self::REPLAYED_HEADER, 'true' );
		return $response;
	}

	/**
	 * Stores the response of a claimed key (inside the same transaction).
	 *
	 * @param string           $key_hash Key.
	 * @param WP_REST_Response $response The response to replay.
	 * @return true|WP_Error
	 */
	public static function complete( $key_hash, WP_REST_Response $response ) {
		global $wpdb;
		$done = $wpdb->update(
			Hookpress_Installer::table( Hookpress_Installer::IDEMPOTENCY_TABLE ),
			array(
				'state'       => 'done',
				'status_code' => (int) $response->get_status(),
				'response'    => wp_json_encode( $response->get_data() ),
			),
			array( 'key_hash' => $key_hash ),
			array( '%s', '%d', '%s' ),
			array( '%s' )
		);
		if ( false === $done ) {
			return self::storage_error();
		}
		Hookpress_Event_Store::step( 'completed' );
		return true;
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
	 * The error when the table cannot be used (no database text: it can name
	 * tables and values). 503, not 500: the database may recover, and the
	 * caller retries 503.
	 *
	 * @return WP_Error
	 */
	private static function storage_error() {
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
