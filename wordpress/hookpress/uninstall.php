<?php
/**
 * Removes everything Hookpress stored, when the plugin is deleted in wp-admin.
 *
 * Deactivation keeps data (a deactivate/activate cycle must not lose events);
 * this runs only on "Delete", and removes the tables, the options, the
 * scheduled jobs, the ai_event posts with their meta, the role (from every
 * user that holds it, then the role itself) and the capabilities given to any
 * role or user. Users who held the ingest role are kept (deleting accounts is
 * the administrator's call); one left with no role at all also loses its
 * application passwords, because a role-less account can still edit its own
 * profile and mint new passwords through the REST API, and without the plugin
 * nothing confines it.
 *
 * Tables and options go first: they are one statement each, and once they
 * are gone nothing of the plugin is left half-configured, even if the rest
 * is cut short. The posts go next, in bulk SQL chunks walking the posts'
 * primary key (one pass over wp_posts in all), not one wp_delete_post() per
 * post, so a million events finish in minutes.
 *
 * @package Hookpress
 */

defined( 'WP_UNINSTALL_PLUGIN' ) || exit;

// The plugin is not loaded during uninstall: the names of what it stored come
// from the classes that own them (class files only declare, nothing runs).
require_once __DIR__ . '/includes/class-hookpress-settings.php';
require_once __DIR__ . '/includes/class-hookpress-installer.php';
require_once __DIR__ . '/includes/class-hookpress-idempotency.php';
require_once __DIR__ . '/includes/class-hookpress-retention.php';
require_once __DIR__ . '/includes/class-hookpress-post-type.php';

/**
 * Removes Hookpress data from the current site.
 */
function hookpress_uninstall_site() {
	global $wpdb;

	foreach ( Hookpress_Installer::tables() as $table ) {
		$wpdb->query( "DROP TABLE IF EXISTS {$wpdb->prefix}{$table}" ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared, WordPress.DB.DirectDatabaseQuery.SchemaChange -- our own tables.
	}

	$options = array_merge( Hookpress_Settings::option_names(), array( Hookpress_Installer::DB_VERSION_OPTION, Hookpress_Installer::UPGRADE_LOCK_OPTION ) );
	foreach ( $options as $option ) {
		delete_option( $option );
	}

	wp_unschedule_hook( Hookpress_Idempotency::PURGE_HOOK );
	wp_unschedule_hook( Hookpress_Retention::HOOK );

	hookpress_uninstall_posts();

	// The role comes off every user first: once the role is deleted, WordPress
	// no longer recognises it as one and WP_User::remove_role() does nothing,
	// while the stale entry in the user's meta still counts as a capability
	// of that name.
	$users = get_users(
		array(
			'role__in' => array( Hookpress_Installer::ROLE ),
			'fields'   => 'all',
		)
	);
	foreach ( $users as $user ) {
		$user->remove_role( Hookpress_Installer::ROLE );
		if ( ! $user->roles ) {
			WP_Application_Passwords::delete_all_application_passwords( $user->ID );
		}
	}
	// Ingest capabilities granted to single users, by hand.
	$ingest_caps = array( Hookpress_Installer::INGEST_CAP, Hookpress_Installer::LEGACY_INGEST_CAP );
	foreach ( $ingest_caps as $cap ) {
		foreach ( get_users( array( 'capability' => $cap ) ) as $user ) {
			if ( isset( $user->caps[ $cap ] ) ) {
				$user->remove_cap( $cap );
			}
		}
	}

	remove_role( Hookpress_Installer::ROLE );

	// Capabilities granted on activation (to administrators) or by hand to any
	// role: everything named after the post type, and the ingest capability
	// (under its current name and version 1's).
	$wp_roles = wp_roles();
	foreach ( array_keys( $wp_roles->roles ) as $role_name ) {
		$role = get_role( $role_name );
		if ( ! $role ) {
			continue;
		}
		foreach ( array_keys( $role->capabilities ) as $cap ) {
			if ( in_array( $cap, $ingest_caps, true ) || preg_match( '/_ai_events?\z/', $cap ) ) {
				$role->remove_cap( $cap );
			}
		}
	}
}

/**
 * Deletes every ai_event post and its meta in chunks of plain SQL.
 *
 * The post type is not registered during uninstall, so posts are found by
 * name. The cursor walks the primary key, so each chunk costs the same
 * however many posts are already gone. ai_event posts have no terms,
 * comments or revisions, so posts and postmeta are all there is.
 */
function hookpress_uninstall_posts() {
	global $wpdb;
	@set_time_limit( 0 ); // phpcs:ignore WordPress.PHP.NoSilencedErrors -- not every host allows it; the chunks are what makes it finish.
	$last = 0;
	do {
		$ids = $wpdb->get_col(
			$wpdb->prepare( "SELECT ID FROM {$wpdb->posts} FORCE INDEX (PRIMARY) WHERE ID > %d AND post_type = %s ORDER BY ID LIMIT 5000", $last, Hookpress_Post_Type::NAME )
		);
		if ( ! $ids ) {
			break;
		}
		$last = (int) end( $ids );
		$in   = implode( ',', array_map( 'intval', $ids ) );
		// phpcs:disable WordPress.DB.PreparedSQL.InterpolatedNotPrepared -- integer ids.
		$wpdb->query( "DELETE FROM {$wpdb->postmeta} WHERE post_id IN ({$in})" );
		$wpdb->query( "DELETE FROM {$wpdb->posts} WHERE ID IN ({$in})" );
		// phpcs:enable
	} while ( true );
	wp_cache_flush();
}

if ( is_multisite() ) {
	foreach ( get_sites(
		array(
			'fields' => 'ids',
			'number' => 0,
		)
	) as $hookpress_site_id ) {
		switch_to_blog( $hookpress_site_id );
		hookpress_uninstall_site();
		restore_current_blog();
	}
} else {
	hookpress_uninstall_site();
}
