<?php
/**
 * Removes everything Hookpress stored, when the plugin is deleted in wp-admin.
 *
 * Deactivation keeps data (a deactivate/activate cycle must not lose events);
 * this runs only on "Delete", and removes the events, their meta, the options,
 * the tables, the role (from every user that holds it, then the role itself)
 * and the capabilities given to any role or user. Users who held the ingest
 * role are kept (deleting accounts is the administrator's call); one left
 * with no role at all also loses its application passwords, because a
 * role-less account can still edit its own profile and mint new passwords
 * through the REST API, and without the plugin nothing confines it.
 *
 * @package Hookpress
 */

defined( 'WP_UNINSTALL_PLUGIN' ) || exit;

/**
 * Removes Hookpress data from the current site.
 */
function hookpress_uninstall_site() {
	global $wpdb;

	// The post type is not registered during uninstall, so query by name; in
	// batches, because wp_delete_post() also removes meta, terms and comments.
	do {
		$ids = $wpdb->get_col(
			$wpdb->prepare( "SELECT ID FROM {$wpdb->posts} WHERE post_type = %s LIMIT 500", 'ai_event' )
		);
		foreach ( $ids as $id ) {
			wp_delete_post( (int) $id, true );
		}
	} while ( $ids );

	foreach ( array( 'hookpress_allowlist', 'hookpress_trusted_proxies', 'hookpress_rate_per_minute', 'hookpress_burst', 'hookpress_db_version', 'hookpress_upgrade_lock' ) as $option ) {
		delete_option( $option );
	}

	foreach ( array( 'hookpress_events', 'hookpress_idempotency', 'hookpress_buckets' ) as $table ) {
		$wpdb->query( "DROP TABLE IF EXISTS {$wpdb->prefix}{$table}" ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared, WordPress.DB.DirectDatabaseQuery.SchemaChange -- our own tables.
	}

	wp_clear_scheduled_hook( 'hookpress_purge_idempotency' );

	// The role comes off every user first: once the role is deleted, WordPress
	// no longer recognises it as one and WP_User::remove_role() does nothing,
	// while the stale entry in the user's meta still counts as a capability
	// of that name.
	$users = get_users(
		array(
			'role__in' => array( 'hookpress_ingest' ),
			'fields'   => 'all',
		)
	);
	foreach ( $users as $user ) {
		$user->remove_role( 'hookpress_ingest' );
		if ( ! $user->roles ) {
			WP_Application_Passwords::delete_all_application_passwords( $user->ID );
		}
	}
	// Ingest capabilities granted to single users, by hand.
	foreach ( array( 'hookpress_ingest_events', 'hookpress_ingest' ) as $cap ) {
		foreach ( get_users( array( 'capability' => $cap ) ) as $user ) {
			if ( isset( $user->caps[ $cap ] ) ) {
				$user->remove_cap( $cap );
			}
		}
	}

	remove_role( 'hookpress_ingest' );

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
			if ( in_array( $cap, array( 'hookpress_ingest_events', 'hookpress_ingest' ), true ) || preg_match( '/_ai_events?\z/', $cap ) ) {
				$role->remove_cap( $cap );
			}
		}
	}
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
