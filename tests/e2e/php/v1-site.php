<?php
// A site as version 1 of the plugin left it: events as ai_event posts with
// their fields in post meta, an events table without them, db version 1.
// tests/e2e/test_plugin_uninstall.py then upgrades it.
global $wpdb;
$events = $wpdb->prefix . 'hookpress_events';
$wpdb->query( "DROP TABLE {$events}" );
$wpdb->query( "CREATE TABLE {$events} (
  key_hash char(64) NOT NULL, source varchar(64) NOT NULL, external_id varchar(256) NOT NULL,
  post_id bigint(20) unsigned NOT NULL DEFAULT 0, occurred_at_us bigint(20) NOT NULL,
  content_hash char(64) NOT NULL, updated_at datetime NOT NULL, PRIMARY KEY (key_hash),
  KEY post_id (post_id) )" );
$legacy = array( array( 'v1-a', 'succeeded', '{"n":1}' ), array( 'v1-b', 'failed', '{}' ) );
foreach ( $legacy as $e ) {
    $id = wp_insert_post( array( 'post_type' => 'ai_event', 'post_status' => 'publish',
        'post_title' => 'legacy: ' . $e[0], 'post_content' => 'Old summary' ) );
    $meta = array( 'external_id' => $e[0], 'source' => 'legacy', 'status' => $e[1],
        'summary' => 'Old summary', 'metadata' => $e[2], 'occurred_at' => '2025-05-05T05:05:05Z',
        'received_at' => '2025-05-06T06:06:06Z' );
    foreach ( $meta as $k => $v ) { add_post_meta( $id, $k, wp_slash( $v ) ); }
    $wpdb->insert( $events, array( 'key_hash' => hash( 'sha256', "legacy\n" . $e[0] ),
        'source' => 'legacy', 'external_id' => $e[0], 'post_id' => $id,
        'occurred_at_us' => 1746421505000000, 'content_hash' => str_repeat( '0', 64 ),
        'updated_at' => '2025-05-06 06:06:06' ) );
}
update_option( 'hookpress_db_version', '1' );
