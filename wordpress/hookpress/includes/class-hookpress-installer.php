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

	const DB_VERSION        = '1';
	const DB_VERSION_OPTION = 'hookpress_db_version';

	/** The dedicated role: it holds the ingest capability and nothing else. */
	const ROLE = 'hookpress_ingest';

	/** The only capability the ingest route accepts. */
	const INGEST_CAP = 'hookpress_ingest';

	/**
	 * Table names without the site prefix.
	 */
	const EVENTS_TABLE      = 'hookpress_events';
	const IDEMPOTENCY_TABLE = 'hookpress_idempotency';
	const BUCKETS_TABLE     = 'hookpress_buckets';

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
	 * Deactivation hook: stops the scheduled purge, keeps every event and setting.
	 */
	public static function deactivate() {
		wp_clear_scheduled_hook( Hookpress_Idempotency::PURGE_HOOK );
	}

	/**
	 * Upgrades the schema when the files changed without a reactivation.
	 */
	public static function maybe_upgrade() {
		if ( get_option( self::DB_VERSION_OPTION ) !== self::DB_VERSION ) {
			self::install();
		}
	}

	/**
	 * Creates or upgrades everything the plugin needs. Safe to run again.
	 */
	public static function install() {
		self::create_tables();

		// The post type must be registered for its capability names to exist.
		if ( ! post_type_exists( Hookpress_Post_Type::NAME ) ) {
			Hookpress_Post_Type::register();
		}

		// The role is reset on every install so a capability added to it by
		// hand (or by an older version) does not survive an upgrade.
		remove_role( self::ROLE );
		add_role( self::ROLE, __( 'Hookpress ingest', 'hookpress' ), array( self::INGEST_CAP => true ) );

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
		Hookpress_Rate_Limiter::reset();

		if ( ! wp_next_scheduled( Hookpress_Idempotency::PURGE_HOOK ) ) {
			wp_schedule_event( time() + HOUR_IN_SECONDS, 'daily', Hookpress_Idempotency::PURGE_HOOK );
		}

		update_option( self::DB_VERSION_OPTION, self::DB_VERSION );
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
	 * Creates the tables with dbDelta (which also alters them on upgrade).
	 *
	 * The events table is the race-safe index behind the upsert: one row per
	 * (source, external_id), keyed by a hash so the unique key stays small on
	 * any MySQL row format. Postmeta cannot serve that purpose because
	 * meta_value is not unique and not usefully indexed.
	 */
	private static function create_tables() {
		global $wpdb;
		require_once ABSPATH . 'wp-admin/includes/upgrade.php';

		$charset_collate = $wpdb->get_charset_collate();
		$events          = self::table( self::EVENTS_TABLE );
		$idempotency     = self::table( self::IDEMPOTENCY_TABLE );
		$buckets         = self::table( self::BUCKETS_TABLE );

		dbDelta(
			"CREATE TABLE {$events} (
  key_hash char(64) NOT NULL,
  source varchar(64) NOT NULL,
  external_id varchar(256) NOT NULL,
  post_id bigint(20) unsigned NOT NULL DEFAULT 0,
  occurred_at_us bigint(20) NOT NULL,
  content_hash char(64) NOT NULL,
  updated_at datetime NOT NULL,
  PRIMARY KEY  (key_hash),
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
	}
}
