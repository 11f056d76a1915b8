<?php
/**
 * Activation, schema upgrades and deactivation.
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * Creates the plugin's tables, role and capabilities.
 */
final class Hookpress_Installer {

	const DB_VERSION        = '3';
	const DB_VERSION_OPTION = 'hookpress_db_version';

	/**
	 * Held (as an option row) by the one request that runs an upgrade; its
	 * value is when the lock expires, so a request that died does not block
	 * upgrades for ever.
	 */
	const UPGRADE_LOCK_OPTION = 'hookpress_upgrade_lock';
	const UPGRADE_LOCK_TTL    = 300;

	/** The dedicated role: it holds the ingest capability and nothing else. */
	const ROLE = 'hookpress_ingest';

	/**
	 * The only capability the ingest and credentials routes accept.
	 *
	 * Not the role's name: WordPress counts a user's role names among its
	 * capabilities, so a capability named like the role would be held by
	 * anyone still carrying the role in their user meta, even after the role
	 * was deleted or its capabilities changed.
	 */
	const INGEST_CAP = 'hookpress_ingest_events';

	/** The capability version 1 used (the role's name). */
	const LEGACY_INGEST_CAP = 'hookpress_ingest';

	/**
	 * Table names without the site prefix.
	 */
	const EVENTS_TABLE      = 'hookpress_events';
	const IDEMPOTENCY_TABLE = 'hookpress_idempotency';
	const BUCKETS_TABLE     = 'hookpress_buckets';

	/** Appended to version 1's events table when an upgrade sets it aside. */
	const LEGACY_SUFFIX = '_v1';

	/**
	 * Activation hook.
	 *
	 * @param bool $network_wide Whether a multisite network activates it for every site.
	 */
	public static function activate( $network_wide = false ) {
		if ( is_multisite() && $network_wide ) {
			// Tables, roles and options are per site, and sites added later
			// would silently lack them: each site activates the plugin itself.
			wp_die(
				esc_html__( 'Hookpress stores its data per site. Activate it on each site that receives events, not network-wide.', 'hookpress' ),
				'',
				array( 'back_link' => true )
			);
		}
		self::install();
	}

	/**
	 * Deactivation hook: stops the scheduled jobs, keeps every event and setting.
	 */
	public static function deactivate() {
		wp_clear_scheduled_hook( Hookpress_Idempotency::PURGE_HOOK );
		wp_unschedule_hook( Hookpress_Retention::HOOK );
	}

	/**
	 * Upgrades when the files changed without a reactivation.
	 *
	 * One request upgrades (it holds the lock); concurrent requests go on
	 * without waiting: every step is additive or idempotent, and the role's
	 * capabilities do not depend on the upgrade having run (enforce_role()).
	 */
	public static function maybe_upgrade() {
		if ( get_option( self::DB_VERSION_OPTION ) === self::DB_VERSION || ! self::lock_upgrade() ) {
			return;
		}
		try {
			self::install();
		} finally {
			self::unlock_upgrade();
		}
	}

	/**
	 * wp_roles_init: the ingest role, where it exists, has exactly the
	 * capabilities this code gives it, in memory, whatever the stored roles
	 * say. So an upgrade that changes them never leaves a request with the
	 * old set, and a capability added to the role by hand has no effect.
	 *
	 * @param WP_Roles $roles Roles being initialised.
	 */
	public static function enforce_role( $roles ) {
		if ( ! isset( $roles->roles[ self::ROLE ] ) ) {
			return;
		}
		$roles->roles[ self::ROLE ]['capabilities'] = self::role_caps();
		$roles->role_objects[ self::ROLE ]           = new WP_Role( self::ROLE, self::role_caps() );
	}

	/**
	 * The ingest role's capabilities.
	 *
	 * @return array<string, bool>
	 */
	public static function role_caps() {
		return array( self::INGEST_CAP => true );
	}

	/**
	 * Creates or upgrades everything the plugin needs. Safe to run again.
	 */
	public static function install() {
		global $wpdb;
		// Nothing of an upgrade's SQL may be printed into the page or the
		// REST answer of the request that happens to run it.
		$shown = $wpdb->hide_errors();
		try {
			self::install_steps();
		} finally {
			if ( $shown ) {
				$wpdb->show_errors();
			}
		}
	}

	/**
	 * The steps of install().
	 */
	private static function install_steps() {
		self::create_tables();

		// The post type must be registered for its capability names to exist.
		if ( ! post_type_exists( Hookpress_Post_Type::NAME ) ) {
			Hookpress_Post_Type::register();
		}

		self::save_role();
		Hookpress_Post_Type::migrate_meta_keys();

		$admin = get_role( 'administrator' );
		if ( $admin ) {
			foreach ( Hookpress_Post_Type::capabilities() as $cap ) {
				$admin->add_cap( $cap );
			}
		}

		add_option( Hookpress_Settings::ALLOWLIST, array() );
		add_option( Hookpress_Settings::TRUSTED_PROXIES, array() );
		add_option( Hookpress_Settings::RATE_PER_MINUTE, Hookpress_Settings::DEFAULT_RATE_PER_MINUTE );
		add_option( Hookpress_Settings::BURST, Hookpress_Settings::DEFAULT_BURST );
		add_option( Hookpress_Settings::CREATE_POSTS, 1 );
		add_option( Hookpress_Settings::RETENTION_DAYS, 0 );
		Hookpress_Rate_Limiter::reset();

		if ( ! wp_next_scheduled( Hookpress_Idempotency::PURGE_HOOK ) ) {
			wp_schedule_event( time() + HOUR_IN_SECONDS, 'daily', Hookpress_Idempotency::PURGE_HOOK );
		}
		if ( ! wp_next_scheduled( Hookpress_Retention::HOOK ) ) {
			wp_schedule_event( time() + HOUR_IN_SECONDS, 'hourly', Hookpress_Retention::HOOK );
		}

		update_option( self::DB_VERSION_OPTION, self::DB_VERSION );
	}

	/**
	 * Stores the ingest role with exactly role_caps(), in one write.
	 *
	 * remove_role() followed by add_role() stores the roles twice, and a
	 * request loading the roles between the two writes finds no role: its
	 * delivery is refused (403, which the deliverer treats as final). This
	 * re-reads the stored roles, changes only the ingest role and writes them
	 * once. The version-1 capability (the role's name) is taken off every
	 * other role it was granted to.
	 */
	private static function save_role() {
		global $wpdb;
		$roles = wp_roles();
		$key   = $roles->role_key;
		// From the database, not the cache: another request may have written them.
		$stored = maybe_unserialize( $wpdb->get_var( $wpdb->prepare( "SELECT option_value FROM {$wpdb->options} WHERE option_name = %s", $key ) ) ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery
		if ( ! is_array( $stored ) ) {
			$stored = $roles->roles;
		}
		foreach ( $stored as $name => $definition ) {
			if ( self::ROLE !== $name && isset( $definition['capabilities'][ self::LEGACY_INGEST_CAP ] ) ) {
				unset( $stored[ $name ]['capabilities'][ self::LEGACY_INGEST_CAP ] );
			}
		}
		$stored[ self::ROLE ] = array(
			'name'         => __( 'Hookpress ingest', 'hookpress' ),
			'capabilities' => self::role_caps(),
		);
		update_option( $key, $stored );
		$roles->for_site();
	}

	/**
	 * Takes the upgrade lock: one INSERT on the options table's unique key,
	 * so exactly one of any number of concurrent requests gets it (add_option()
	 * cannot do this: it upserts).
	 *
	 * @return bool
	 */
	private static function lock_upgrade() {
		global $wpdb;
		$now = time();
		// An expired lock (its request died) is removed first.
		// phpcs:disable WordPress.DB.DirectDatabaseQuery
		$wpdb->query( $wpdb->prepare( "DELETE FROM {$wpdb->options} WHERE option_name = %s AND CAST(option_value AS UNSIGNED) < %d", self::UPGRADE_LOCK_OPTION, $now ) );
		$taken = $wpdb->query( $wpdb->prepare( "INSERT IGNORE INTO {$wpdb->options} (option_name, option_value, autoload) VALUES (%s, %s, 'no')", self::UPGRADE_LOCK_OPTION, (string) ( $now + self::UPGRADE_LOCK_TTL ) ) );
		// phpcs:enable
		return 1 === $taken;
	}

	/**
	 * Gives the upgrade lock back.
	 */
	private static function unlock_upgrade() {
		global $wpdb;
		$wpdb->delete( $wpdb->options, array( 'option_name' => self::UPGRADE_LOCK_OPTION ), array( '%s' ) );
		wp_cache_delete( self::UPGRADE_LOCK_OPTION, 'options' );
	}

	/**
	 * Full name of one of the plugin's tables.
	 *
	 * @param string $name Table name without prefix.
	 * @return string
	 */
	public static function table( $name ) {
		global $wpdb;
		return $wpdb->prefix . $name;
	}

	/**
	 * Every table the plugin may have created, without the site prefix,
	 * version 1's set-aside events table included (uninstall.php drops each).
	 *
	 * @return string[]
	 */
	public static function tables() {
		return array( self::EVENTS_TABLE, self::EVENTS_TABLE . self::LEGACY_SUFFIX, self::IDEMPOTENCY_TABLE, self::BUCKETS_TABLE );
	}

	/**
	 * Creates the tables with dbDelta (which also alters them on upgrade).
	 *
	 * The events table is the store of record: one row per (source,
	 * external_id), the unique key the upsert relies on. Every other index
	 * serves one query of the read paths (the Events screen, the read-only
	 * REST route, wp/v2/ai-events' filters, retention), so that no read scans
	 * the table however large it grows:
	 *
	 * - external_id: lookup by external id alone (REST filter, search box);
	 * - occurred_at, received_at: the unfiltered list, newest first, and the
	 *   retention sweep (oldest received first);
	 * - source_*, status_*: a filtered list in either order, without a sort;
	 * - post_id: the row of a post deleted in wp-admin.
	 *
	 * occurred_at_us is microseconds since the epoch (UTC): exact, any year,
	 * and independent of the session time zone. content_hash is the tie-break
	 * for equal times (see Hookpress_Event_Store). source and external_id
	 * compare byte for byte: ids are case-sensitive.
	 */
	private static function create_tables() {
		global $wpdb;
		require_once ABSPATH . 'wp-admin/includes/upgrade.php';

		$charset_collate = $wpdb->get_charset_collate();
		$events          = self::table( self::EVENTS_TABLE );
		$idempotency     = self::table( self::IDEMPOTENCY_TABLE );
		$buckets         = self::table( self::BUCKETS_TABLE );

		$legacy = self::set_aside_v1_index( $events );

		dbDelta(
			"CREATE TABLE {$events} (
  id bigint(20) unsigned NOT NULL AUTO_INCREMENT,
  source varchar(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  external_id varchar(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  status varchar(64) NOT NULL,
  summary text NOT NULL,
  metadata mediumtext NOT NULL,
  occurred_at_us bigint(20) NOT NULL,
  content_hash binary(32) NOT NULL,
  received_at datetime(6) NOT NULL,
  post_id bigint(20) unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY  (id),
  UNIQUE KEY source_external_id (source,external_id),
  KEY external_id (external_id),
  KEY occurred_at (occurred_at_us),
  KEY received_at (received_at),
  KEY source_occurred_at (source,occurred_at_us),
  KEY source_received_at (source,received_at),
  KEY status_occurred_at (status,occurred_at_us),
  KEY status_received_at (status,received_at),
  KEY post_id (post_id)
) {$charset_collate};
CREATE TABLE {$idempotency} (
  key_hash char(64) NOT NULL,
  request_hash char(64) NOT NULL,
  state varchar(16) NOT NULL,
  status_code smallint(5) unsigned NOT NULL DEFAULT 0,
  response longtext NULL,
  created_at datetime NOT NULL,
  expires_at datetime NOT NULL,
  PRIMARY KEY  (key_hash),
  KEY expires_at (expires_at)
) {$charset_collate};
CREATE TABLE {$buckets} (
  name varchar(64) NOT NULL,
  tokens double NOT NULL,
  refilled_at decimal(20,6) NOT NULL,
  spent bigint(20) unsigned NOT NULL DEFAULT 0,
  PRIMARY KEY  (name)
) {$charset_collate};"
		);

		if ( null !== $legacy ) {
			self::migrate_v1_events( $events, $legacy );
		}
	}

	/**
	 * Renames version 1's index table out of the way, when it is there.
	 *
	 * Version 1 kept events in posts and postmeta, with a small index table
	 * (key_hash, post_id, ...) under the name the store of record now uses.
	 * RENAME TABLE is atomic: of two requests upgrading at once, one renames
	 * and migrates, the other finds the name free and only creates the table.
	 *
	 * @param string $events Events table name.
	 * @return string|null The legacy table's new name, when this request renamed it.
	 */
	private static function set_aside_v1_index( $events ) {
		global $wpdb;
		if ( $wpdb->get_var( $wpdb->prepare( 'SHOW TABLES LIKE %s', $wpdb->esc_like( $events ) ) ) !== $events ) {
			return null;
		}
		$column = $wpdb->get_var( $wpdb->prepare( "SHOW COLUMNS FROM {$events} LIKE %s", 'key_hash' ) ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- table name is ours.
		if ( 'key_hash' !== $column ) {
			return null;
		}
		$legacy = $events . self::LEGACY_SUFFIX;
		$wpdb->query( "RENAME TABLE {$events} TO {$legacy}" ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared, WordPress.DB.DirectDatabaseQuery.SchemaChange -- our own table.
		return '' === $wpdb->last_error ? $legacy : null;
	}

	/**
	 * Copies version 1's events (index row + post meta) into the store of
	 * record, keeping their posts as the projection, then drops the old index.
	 * INSERT IGNORE makes a repeated migration harmless.
	 *
	 * @param string $events Events table name.
	 * @param string $legacy Version 1 index table.
	 */
	private static function migrate_v1_events( $events, $legacy ) {
		global $wpdb;
		$meta = array();
		foreach ( array( 'status', 'summary', 'metadata', 'received_at' ) as $key ) {
			// Under its current key, or version 1's plain one if not moved yet.
			$meta[ $key ] = $wpdb->prepare(
				"(SELECT meta_value FROM {$wpdb->postmeta} WHERE post_id = l.post_id AND meta_key IN (%s, %s) ORDER BY meta_key = %s DESC LIMIT 1)", // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared
				Hookpress_Post_Type::meta_key( $key ),
				$key,
				Hookpress_Post_Type::meta_key( $key )
			);
		}
		// phpcs:disable WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- table names and subqueries are ours.
		$wpdb->query(
			"INSERT IGNORE INTO {$events}
				(source, external_id, status, summary, metadata, occurred_at_us, content_hash, received_at, post_id)
			SELECT l.source, l.external_id,
				COALESCE({$meta['status']}, ''), COALESCE({$meta['summary']}, ''), COALESCE({$meta['metadata']}, '{}'),
				l.occurred_at_us,
				UNHEX(SHA2(CONCAT_WS(CHAR(31), COALESCE({$meta['status']}, ''), COALESCE({$meta['summary']}, ''), COALESCE({$meta['metadata']}, '{}')), 256)),
				COALESCE(STR_TO_DATE({$meta['received_at']}, '%Y-%m-%dT%H:%i:%sZ'), l.updated_at),
				l.post_id
			FROM {$legacy} AS l"
		);
		if ( '' === $wpdb->last_error ) {
			$wpdb->query( "DROP TABLE IF EXISTS {$legacy}" ); // phpcs:ignore WordPress.DB.DirectDatabaseQuery.SchemaChange
		}
		// phpcs:enable
	}
}
