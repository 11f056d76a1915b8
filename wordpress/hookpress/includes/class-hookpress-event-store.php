<?php
/**
 * Race-safe upsert of ai_event posts.
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * Creates or updates the one ai_event post of a (source, external_id).
 *
 * A get_posts() followed by wp_insert_post() creates duplicates when two
 * deliveries of the same event overlap: both look, both find nothing, both
 * insert. Every write for one (source, external_id) therefore runs under a
 * MySQL named lock (GET_LOCK), held by this request's connection and released
 * by MySQL if PHP dies. Under the lock the index table is read, the ordering
 * rule applied and the post written. The index's primary key on the hash is a
 * second line of defence: a row can exist only once.
 *
 * The key is (source, external_id): two providers may use the same id format,
 * and their events must not overwrite each other.
 */
final class Hookpress_Event_Store {

	const CREATED   = 'created';
	const UPDATED   = 'updated';
	const UNCHANGED = 'unchanged';
	const STALE     = 'stale';

	/** Seconds to wait for a concurrent write of the same event. */
	const LOCK_TIMEOUT = 10;

	/**
	 * Stores an event.
	 *
	 * @param array $event {
	 *     Validated, sanitized fields.
	 *
	 *     @type string $source         Source.
	 *     @type string $external_id    External id.
	 *     @type string $status         Status.
	 *     @type string $summary        Plain-text summary.
	 *     @type string $metadata       JSON object text.
	 *     @type string $occurred_at    Normalized RFC 3339 UTC time.
	 *     @type int    $occurred_at_us Microseconds since the epoch.
	 * }
	 * @return array{id: int, result: string}|WP_Error
	 */
	public static function upsert( array $event ) {
		global $wpdb;
		$table    = Hookpress_Installer::table( Hookpress_Installer::EVENTS_TABLE );
		$key_hash = hash( 'sha256', $event['source'] . "\n" . $event['external_id'] );
		// Lock names are server-wide and at most 64 characters: include the
		// database and prefix so two sites on one server do not share locks.
		$lock = 'hookpress:' . substr( hash( 'sha256', DB_NAME . '|' . $wpdb->prefix . '|' . $key_hash ), 0, 48 );

		$locked = $wpdb->get_var( $wpdb->prepare( 'SELECT GET_LOCK(%s, %d)', $lock, self::LOCK_TIMEOUT ) );
		if ( '1' !== (string) $locked ) {
			return new WP_Error(
				'hookpress_busy',
				__( 'Another delivery of this event is being stored; retry shortly.', 'hookpress' ),
				array(
					'status'      => 503,
					'retry_after' => 1,
				)
			);
		}

		try {
			$content_hash = hash(
				'sha256',
				wp_json_encode( array( $event['status'], $event['summary'], $event['metadata'], $event['occurred_at'] ) )
			);
			$row          = $wpdb->get_row(
				$wpdb->prepare( "SELECT post_id, occurred_at_us, content_hash FROM {$table} WHERE key_hash = %s", $key_hash ) // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- table name is ours.
			);
			$post         = $row ? get_post( (int) $row->post_id ) : null;

			if ( ! $post || Hookpress_Post_Type::NAME !== $post->post_type ) {
				$post_id = wp_insert_post( wp_slash( self::post_fields( $event ) ), true );
				if ( is_wp_error( $post_id ) ) {
					return self::store_error();
				}
				$saved = self::save_index( $key_hash, $event, (int) $post_id, $content_hash );
				if ( is_wp_error( $saved ) ) {
					// Without the index row the next delivery would create a
					// second post: undo, and let the caller retry.
					wp_delete_post( (int) $post_id, true );
					return $saved;
				}
				return array(
					'id'     => (int) $post_id,
					'result' => self::CREATED,
				);
			}

			$stored_us = (int) $row->occurred_at_us;
			if ( $event['occurred_at_us'] < $stored_us ) {
				// Out of order: an older event never overwrites a newer one.
				return array(
					'id'     => (int) $post->ID,
					'result' => self::STALE,
				);
			}
			if ( $event['occurred_at_us'] === $stored_us && hash_equals( (string) $row->content_hash, $content_hash ) ) {
				return array(
					'id'     => (int) $post->ID,
					'result' => self::UNCHANGED,
				);
			}

			// Same or newer time with different content: the latest delivery wins.
			// The status stays: an event an administrator trashed stays in the trash.
			$fields       = self::post_fields( $event );
			$fields['ID'] = (int) $post->ID;
			unset( $fields['post_status'] );
			$updated      = wp_update_post( wp_slash( $fields ), true );
			if ( is_wp_error( $updated ) ) {
				return self::store_error();
			}
			$saved = self::save_index( $key_hash, $event, (int) $post->ID, $content_hash );
			if ( is_wp_error( $saved ) ) {
				return $saved;
			}
			return array(
				'id'     => (int) $post->ID,
				'result' => self::UPDATED,
			);
		} finally {
			$wpdb->query( $wpdb->prepare( 'SELECT RELEASE_LOCK(%s)', $lock ) );
		}
	}

	/**
	 * Forgets the index row of a deleted post.
	 *
	 * @param int $post_id Post id.
	 */
	public static function forget_post( $post_id ) {
		global $wpdb;
		$wpdb->delete(
			Hookpress_Installer::table( Hookpress_Installer::EVENTS_TABLE ),
			array( 'post_id' => (int) $post_id ),
			array( '%d' )
		);
	}

	/**
	 * Post fields for wp_insert_post()/wp_update_post() (unslashed).
	 *
	 * @param array $event Event fields.
	 * @return array
	 */
	private static function post_fields( array $event ) {
		return array(
			'post_type'    => Hookpress_Post_Type::NAME,
			'post_status'  => 'publish',
			'post_title'   => $event['source'] . ': ' . $event['external_id'],
			'post_content' => $event['summary'],
			'meta_input'   => array(
				Hookpress_Post_Type::meta_key( 'external_id' ) => $event['external_id'],
				Hookpress_Post_Type::meta_key( 'source' )      => $event['source'],
				Hookpress_Post_Type::meta_key( 'status' )      => $event['status'],
				Hookpress_Post_Type::meta_key( 'summary' )     => $event['summary'],
				Hookpress_Post_Type::meta_key( 'metadata' )    => $event['metadata'],
				Hookpress_Post_Type::meta_key( 'occurred_at' ) => $event['occurred_at'],
				Hookpress_Post_Type::meta_key( 'received_at' ) => gmdate( 'Y-m-d\TH:i:s\Z' ),
			),
		);
	}

	/**
	 * Writes the index row.
	 *
	 * @param string $key_hash     Key.
	 * @param array  $event        Event fields.
	 * @param int    $post_id      Post id.
	 * @param string $content_hash Content fingerprint.
	 * @return true|WP_Error
	 */
	private static function save_index( $key_hash, array $event, $post_id, $content_hash ) {
		global $wpdb;
		$table = Hookpress_Installer::table( Hookpress_Installer::EVENTS_TABLE );
		$saved = $wpdb->query( // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- table name is ours.
			$wpdb->prepare(
				"INSERT INTO {$table} (key_hash, source, external_id, post_id, occurred_at_us, content_hash, updated_at)
				VALUES (%s, %s, %s, %d, %d, %s, UTC_TIMESTAMP())
				ON DUPLICATE KEY UPDATE post_id = VALUES(post_id), occurred_at_us = VALUES(occurred_at_us),
					content_hash = VALUES(content_hash), updated_at = VALUES(updated_at)",
				$key_hash,
				$event['source'],
				$event['external_id'],
				$post_id,
				$event['occurred_at_us'],
				$content_hash
			)
		);
		if ( false === $saved ) {
			return self::store_error();
		}
		return true;
	}

	/**
	 * The error for a failed write. The database's words never reach the
	 * caller, not even under WP_DEBUG (they name tables, columns and SQL);
	 * they are in the PHP error log, where wpdb writes every failed query.
	 *
	 * @return WP_Error
	 */
	private static function store_error() {
		return new WP_Error(
			'hookpress_store_failed',
			__( 'The event could not be stored; retry later.', 'hookpress' ),
			array(
				'status'      => 503,
				'retry_after' => 5,
			)
		);
	}
}
