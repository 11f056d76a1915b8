<?php
/**
 * The events table: the store of record, and its one-statement upsert.
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * Creates or updates the one row of a (source, external_id), and keeps its
 * ai_event post (the projection) in step.
 *
 * The write is one INSERT ... ON DUPLICATE KEY UPDATE on the unique key
 * (source, external_id). Whether an incoming version replaces the stored one
 * is decided inside that statement, on the row as InnoDB holds it under an
 * exclusive lock, so it needs no lock function (GET_LOCK is per server: a
 * read/write-splitting driver sends its SELECT to a replica, where it
 * excludes nothing) and no read beforehand (which a splitter may answer from
 * a replica that lags). The rule: the version with the later occurred_at
 * wins; at the same instant, the one whose content hash is greater, so two
 * different versions stamped alike settle the same way whatever order they
 * arrive in.
 *
 * Every unit of work (Idempotency-Key claim, upsert, post, stored response)
 * runs in one transaction: if PHP dies at any point the connection closes
 * and InnoDB rolls all of it back, so there is never a row without its post,
 * a post without its row, or a claimed key without its outcome.
 */
final class Hookpress_Event_Store {

	const CREATED   = 'created';
	const UPDATED   = 'updated';
	const UNCHANGED = 'unchanged';
	const STALE     = 'stale';

	/**
	 * Fired at each step of storing an event, with the step's name: for
	 * tracing, and for tests that kill PHP at a named point.
	 */
	const STEP_ACTION = 'hookpress_store_step';

	/** How often a unit of work runs when InnoDB picks it as a deadlock victim. */
	const ATTEMPTS = 4;

	/** MySQL's ER_LOCK_DEADLOCK: InnoDB rolled the transaction back; run it again. */
	const ER_LOCK_DEADLOCK = 1213;

	/** What a read of a row returns (content_hash as lower-case hex). */
	const COLUMNS = 'id, source, external_id, status, summary, metadata, occurred_at_us, LOWER(HEX(content_hash)) AS content_hash, received_at, post_id';

	/** Rows deleted per statement by the bulk deletes. */
	const DELETE_CHUNK = 500;

	/**
	 * Runs $work in a transaction: committed when it returns anything but a
	 * WP_Error, rolled back otherwise, and run again (up to ATTEMPTS times)
	 * when InnoDB chose it as the victim of a deadlock.
	 *
	 * $work must stop at the first failed query and return its WP_Error:
	 * after a deadlock InnoDB has already rolled back, and anything written
	 * after that would be committed on its own.
	 *
	 * @param callable $work Returns the result, or a WP_Error.
	 * @return mixed|WP_Error
	 */
	public static function transaction( callable $work ) {
		global $wpdb;
		// A database error must become a 503 in JSON, not HTML in the body
		// (it still goes to the error log).
		$shown = $wpdb->hide_errors();
		try {
			for ( $attempt = 1; ; $attempt++ ) {
				if ( false === $wpdb->query( 'START TRANSACTION' ) ) {
					return self::failed();
				}
				$result = null;
				try {
					$result = $work();
				} finally {
					if ( null === $result || is_wp_error( $result ) ) {
						$deadlock = self::ER_LOCK_DEADLOCK === self::last_errno();
						$wpdb->query( 'ROLLBACK' );
						// Posts this attempt created are gone: so must their cache entries be.
						Hookpress_Post_Projection::forget_created();
					}
				}
				if ( is_wp_error( $result ) ) {
					if ( $deadlock && $attempt < self::ATTEMPTS ) {
						// Both transactions wanted the same rows; the other one goes on.
						usleep( wp_rand( 1000, 20000 ) * $attempt );
						continue;
					}
					return $result;
				}
				if ( false === $wpdb->query( 'COMMIT' ) ) {
					Hookpress_Post_Projection::forget_created();
					return self::failed();
				}
				Hookpress_Post_Projection::committed();
				self::step( 'committed' );
				return $result;
			}
		} finally {
			$wpdb->show_errors( $shown );
		}
	}

	/**
	 * Stores one version of an event, and projects it into its post when
	 * posts are on. Runs inside transaction().
	 *
	 * @param array $event {
	 *     Validated, sanitized fields.
	 *
	 *     @type string $source         Source.
	 *     @type string $external_id    External id.
	 *     @type string $status         Status.
	 *     @type string $summary        Plain-text summary.
	 *     @type string $metadata       JSON object text.
	 *     @type int    $occurred_at_us Microseconds since the epoch, UTC.
	 * }
	 * @return array{result: string, event: array}|WP_Error The outcome and the stored row.
	 */
	public static function upsert( array $event ) {
		global $wpdb;
		$table = self::table();
		$hash  = self::content_hash( $event );
		$now   = self::now();

		// The incoming version is newer: a later occurred_at, or the same one
		// and a greater content hash. MySQL assigns left to right, and every
		// assignment after one sees that column's new value: occurred_at_us
		// and content_hash therefore come last, and occurred_at_us needs no
		// condition (when the hash changed, the incoming time is the same or
		// later, so the greater of the two is the right one either way).
		$newer = '(VALUES(occurred_at_us), VALUES(content_hash)) > (occurred_at_us, content_hash)';
		// phpcs:disable WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- table name and condition are ours.
		$written = $wpdb->query(
			$wpdb->prepare(
				"INSERT INTO {$table} (source, external_id, status, summary, metadata, occurred_at_us, content_hash, received_at)
				VALUES (%s, %s, %s, %s, %s, %d, UNHEX(%s), %s)
				ON DUPLICATE KEY UPDATE
					status = IF({$newer}, VALUES(status), status),
					summary = IF({$newer}, VALUES(summary), summary),
					metadata = IF({$newer}, VALUES(metadata), metadata),
					received_at = IF({$newer}, VALUES(received_at), received_at),
					content_hash = IF({$newer}, VALUES(content_hash), content_hash),
					occurred_at_us = GREATEST(occurred_at_us, VALUES(occurred_at_us))",
				$event['source'],
				$event['external_id'],
				$event['status'],
				$event['summary'],
				$event['metadata'],
				$event['occurred_at_us'],
				$hash,
				$now
			)
		);
		// phpcs:enable
		if ( false === $written ) {
			return self::failed();
		}
		self::step( 'upserted' );

		// Affected rows (wpdb connects without CLIENT_FOUND_ROWS): 1 inserted,
		// 2 replaced, 0 left as it was. With CLIENT_FOUND_ROWS (a site's
		// MYSQL_CLIENT_FLAGS) an untouched row also counts 1, but inserts no
		// id: the insert id tells the two apart in either mode.
		$affected = (int) $wpdb->rows_affected;
		if ( 1 === $affected && $wpdb->insert_id > 0 ) {
			$result = self::CREATED;
			$row    = array(
				'id'             => (int) $wpdb->insert_id,
				'source'         => $event['source'],
				'external_id'    => $event['external_id'],
				'status'         => $event['status'],
				'summary'        => $event['summary'],
				'metadata'       => $event['metadata'],
				'occurred_at_us' => (int) $event['occurred_at_us'],
				'content_hash'   => $hash,
				'received_at'    => $now,
				'post_id'        => 0,
			);
		} else {
			// The row is this transaction's (the statement locked it), so
			// this locking read sees exactly what the statement left; and a
			// read inside a write transaction stays on the primary.
			$row = self::locked_row( $event['source'], $event['external_id'] );
			if ( is_wp_error( $row ) ) {
				return $row;
			}
			if ( 2 === $affected ) {
				$result = self::UPDATED;
			} elseif ( (int) $row['occurred_at_us'] === (int) $event['occurred_at_us'] && hash_equals( $row['content_hash'], $hash ) ) {
				$result = self::UNCHANGED;
			} else {
				$result = self::STALE;
			}
		}

		if ( Hookpress_Settings::create_posts() ) {
			$post_id = Hookpress_Post_Projection::sync( $row, $result );
			if ( is_wp_error( $post_id ) ) {
				return $post_id;
			}
			$row['post_id'] = $post_id;
		}

		return array(
			'result' => $result,
			'event'  => $row,
		);
	}

	/**
	 * Links a row to its post (inside the upsert's transaction).
	 *
	 * @param int $id      Row id.
	 * @param int $post_id Post id.
	 * @return true|WP_Error
	 */
	public static function link_post( $id, $post_id ) {
		global $wpdb;
		$linked = $wpdb->update( self::table(), array( 'post_id' => (int) $post_id ), array( 'id' => (int) $id ), array( '%d' ), array( '%d' ) );
		if ( false === $linked ) {
			return self::failed();
		}
		self::step( 'linked' );
		return true;
	}

	/**
	 * One event by its id.
	 *
	 * @param int $id Row id.
	 * @return array|null
	 */
	public static function find( $id ) {
		global $wpdb;
		$table = self::table();
		$columns = self::COLUMNS;
		$row     = $wpdb->get_row(
			$wpdb->prepare( "SELECT {$columns} FROM {$table} WHERE id = %d", $id ), // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
			ARRAY_A
		);
		return $row ? self::typed( $row ) : null;
	}

	/**
	 * Deletes events and their posts (with the posts' meta) in bulk SQL.
	 *
	 * One statement per chunk removes the rows, their posts and the meta of
	 * those posts together. No per-post hooks run: this is for the Events
	 * screen's bulk delete and for retention, where a million
	 * wp_delete_post() calls would never finish.
	 *
	 * @param int[]       $ids             Row ids.
	 * @param string|null $received_before Only rows received before this UTC
	 *                                     time ('Y-m-d H:i:s'): re-checked by
	 *                                     the delete itself, so a version that
	 *                                     arrived meanwhile is kept.
	 * @return int|WP_Error Rows deleted from the events table.
	 */
	public static function delete( array $ids, $received_before = null ) {
		global $wpdb;
		$ids = array_values( array_unique( array_filter( array_map( 'intval', $ids ) ) ) );
		if ( ! $ids ) {
			return 0;
		}
		$table   = self::table();
		$deleted = 0;
		foreach ( array_chunk( $ids, self::DELETE_CHUNK ) as $chunk ) {
			$in       = implode( ',', $chunk );
			$post_ids = $wpdb->get_col( "SELECT post_id FROM {$table} WHERE id IN ({$in}) AND post_id > 0" ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
			$age      = null === $received_before ? '' : $wpdb->prepare( ' AND e.received_at < %s', $received_before );
			// phpcs:disable WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- ids are integers, tables are ours.
			$before = (int) $wpdb->get_var( "SELECT COUNT(*) FROM {$table} AS e WHERE e.id IN ({$in}){$age}" );
			$done   = $wpdb->query(
				$wpdb->prepare(
					"DELETE e, p, m FROM {$table} AS e
					LEFT JOIN {$wpdb->posts} AS p ON p.ID = e.post_id AND p.post_type = %s
					LEFT JOIN {$wpdb->postmeta} AS m ON m.post_id = p.ID
					WHERE e.id IN ({$in}){$age}",
					Hookpress_Post_Type::NAME
				)
			);
			// phpcs:enable
			if ( false === $done ) {
				return self::failed();
			}
			$deleted += $before;
			foreach ( $post_ids as $post_id ) {
				clean_post_cache( (int) $post_id );
			}
		}
		return $deleted;
	}

	/**
	 * Removes the row of a post deleted in wp-admin, so the next delivery of
	 * that event creates it afresh (the administrator deleted the event).
	 *
	 * @param int $post_id Post id.
	 */
	public static function forget_post( $post_id ) {
		global $wpdb;
		if ( (int) $post_id > 0 ) {
			$wpdb->delete( self::table(), array( 'post_id' => (int) $post_id ), array( '%d' ) );
		}
	}

	/**
	 * The tie-break between two versions stamped with the same instant:
	 * sha256 of what a version stores (status, summary, metadata), joined by
	 * the unit separator. Computable in SQL too (the version 1 migration does).
	 *
	 * @param array $event Event fields.
	 * @return string Lower-case hex.
	 */
	public static function content_hash( array $event ) {
		return hash( 'sha256', $event['status'] . "\x1f" . $event['summary'] . "\x1f" . $event['metadata'] );
	}

	/**
	 * RFC 3339 UTC text of a time in microseconds since the epoch.
	 *
	 * @param int $us Microseconds.
	 * @return string
	 */
	public static function rfc3339_us( $us ) {
		$us       = (int) $us;
		$seconds  = intdiv( $us, 1000000 );
		$fraction = $us % 1000000;
		if ( $fraction < 0 ) {
			--$seconds;
			$fraction += 1000000;
		}
		$text = gmdate( 'Y-m-d\TH:i:s', $seconds );
		if ( $fraction ) {
			$text .= '.' . rtrim( sprintf( '%06d', $fraction ), '0' );
		}
		return $text . 'Z';
	}

	/**
	 * RFC 3339 UTC text of a stored DATETIME(6) (UTC).
	 *
	 * @param string $datetime 'Y-m-d H:i:s[.u]'.
	 * @return string
	 */
	public static function rfc3339_datetime( $datetime ) {
		$parts = explode( '.', (string) $datetime, 2 );
		$text  = str_replace( ' ', 'T', $parts[0] );
		if ( isset( $parts[1] ) && '' !== rtrim( $parts[1], '0' ) ) {
			$text .= '.' . rtrim( $parts[1], '0' );
		}
		return $text . 'Z';
	}

	/**
	 * Now, UTC, with microseconds, as DATETIME(6) text (one clock read).
	 *
	 * @return string
	 */
	public static function now() {
		list( $fraction, $seconds ) = explode( ' ', microtime() );
		// "0.12345678 1700000000": the fraction's digits, truncated (rounding could carry).
		return gmdate( 'Y-m-d H:i:s', (int) $seconds ) . substr( $fraction, 1, 7 );
	}

	/**
	 * Full name of the events table.
	 *
	 * @return string
	 */
	public static function table() {
		return Hookpress_Installer::table( Hookpress_Installer::EVENTS_TABLE );
	}

	/**
	 * Announces a step of the unit of work (see STEP_ACTION).
	 *
	 * @param string $step Step name.
	 */
	public static function step( $step ) {
		do_action( self::STEP_ACTION, $step );
	}

	/**
	 * The error for a failed query; a deadlock is recognised by transaction().
	 * No database text: it can name tables, columns and values.
	 *
	 * @return WP_Error
	 */
	public static function failed() {
		return new WP_Error(
			'hookpress_store_failed',
			__( 'The event could not be stored; retry later.', 'hookpress' ),
			array(
				'status'      => 503,
				'retry_after' => 5,
			)
		);
	}

	/**
	 * The row of a key, with a lock (the caller's transaction already holds it).
	 *
	 * @param string $source      Source.
	 * @param string $external_id External id.
	 * @return array|WP_Error
	 */
	private static function locked_row( $source, $external_id ) {
		global $wpdb;
		$table   = self::table();
		$columns = self::COLUMNS;
		$row     = $wpdb->get_row(
			$wpdb->prepare(
				"SELECT {$columns} FROM {$table} WHERE source = %s AND external_id = %s FOR UPDATE", // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
				$source,
				$external_id
			),
			ARRAY_A
		);
		if ( ! $row ) {
			return self::failed();
		}
		return self::typed( $row );
	}

	/**
	 * A row as read from wpdb (all strings) with its integer columns as integers.
	 *
	 * @param array $row Row.
	 * @return array
	 */
	private static function typed( array $row ) {
		foreach ( array( 'id', 'occurred_at_us', 'post_id' ) as $column ) {
			$row[ $column ] = (int) $row[ $column ];
		}
		return $row;
	}

	/**
	 * The MySQL error number of the last query on wpdb's connection.
	 *
	 * @return int
	 */
	private static function last_errno() {
		global $wpdb;
		$dbh = $wpdb->dbh;
		return $dbh instanceof mysqli ? (int) mysqli_errno( $dbh ) : 0;
	}
}
