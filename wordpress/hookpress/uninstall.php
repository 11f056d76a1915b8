<?php
/**
 * Removes everything Hookpress stored, when the plugin is deleted in wp-admin.
 *
 * Deactivation keeps data (a deactivate/activate cycle must not lose events);
 * this runs only on "Delete", and removes the events, their meta, the options,
 * the tables, the role and the capabilities given to other roles. Users who
 * held the ingest role are kept (deleting accounts is the administrator's
 * call), but the role is gone, so they can no longer do anything.
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

	foreach ( array( 'hookpress_allowlist', 'hookpress_trusted_proxies', 'hookpress_rate_per_minute', 'hookpress_burst', 'hookpress_db_version' ) as $option ) {
		delete_option( $option );
	}

	foreach ( array( 'hookpress_events', 'hookpress_idempotency', 'hookpress_buckets' ) as $table ) {
		$wpdb->query( "DROP TABLE IF EXISTS {$wpdb->prefix}{$table}" ); // phpcs:ignore WordPress.DB.PreparedSQL.InterpolatedNotPrepared, WordPress.DB.DirectDatabaseQuery.SchemaChange -- our own tables.
	}

	wp_clear_scheduled_hook( 'hookpress_purge_idempotency' );

	remove_role( 'hookpress_ingest' );

	// Capabilities granted on activation (to administrators) or by hand to any
	// role: everything named after the post type, and the ingest capability.
	$wp_roles = wp_roles();
	foreach ( array_keys( $wp_roles->roles ) as $role_name ) {
		$role = get_role( $role_name );
		if ( ! $role ) {
			continue;
		}
		foreach ( array_keys( $role->capabilities ) as $cap ) {
			if ( 'hookpress_ingest' === $cap || preg_match( '/_ai_events?\z/', $cap ) ) {
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
