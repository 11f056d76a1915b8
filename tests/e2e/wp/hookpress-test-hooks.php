<?php
/**
 * Plugin Name: hookpress test hooks (tests only)
 * Description: Copied into wp-content/mu-plugins by tests/e2e; never part of the plugin.
 *
 * Two switches, each a request header, so a test turns them on per request:
 *
 * - X-Hookpress-Test-Kill-At: STEP kills this PHP worker with SIGKILL when the
 *   store announces STEP (Hookpress_Event_Store::STEP_ACTION): the crash of a
 *   real process, with no shutdown functions, no destructors, no ROLLBACK.
 * - X-Hookpress-Test-Queries: TOKEN writes every SQL statement the request
 *   ran after this point, with the seconds it took, to
 *   wp-content/hookpress-test-queries/TOKEN.json as [[statement, seconds], ...].
 *
 * @package Hookpress
 */

// phpcs:disable WordPress.Security.ValidatedSanitizedInput -- test-only switches.
$hookpress_test_kill_at = isset( $_SERVER['HTTP_X_HOOKPRESS_TEST_KILL_AT'] ) ? (string) $_SERVER['HTTP_X_HOOKPRESS_TEST_KILL_AT'] : '';
$hookpress_test_queries = isset( $_SERVER['HTTP_X_HOOKPRESS_TEST_QUERIES'] ) ? preg_replace( '/[^a-z0-9-]/', '', (string) $_SERVER['HTTP_X_HOOKPRESS_TEST_QUERIES'] ) : '';
// phpcs:enable

if ( '' !== $hookpress_test_kill_at ) {
	add_action(
		'hookpress_store_step',
		static function ( $step ) use ( $hookpress_test_kill_at ) {
			if ( $step === $hookpress_test_kill_at ) {
				posix_kill( getmypid(), SIGKILL );
			}
		}
	);
}

if ( '' !== $hookpress_test_queries ) {
	if ( ! defined( 'SAVEQUERIES' ) ) {
		define( 'SAVEQUERIES', true );
	}
	$GLOBALS['wpdb']->queries = array();
	register_shutdown_function(
		static function () use ( $hookpress_test_queries ) {
			$dir = WP_CONTENT_DIR . '/hookpress-test-queries';
			if ( ! is_dir( $dir ) ) {
				mkdir( $dir );
			}
			$queries = array();
			foreach ( (array) $GLOBALS['wpdb']->queries as $query ) {
				$queries[] = array( $query[0], (float) $query[1] );
			}
			file_put_contents( "$dir/$hookpress_test_queries.json", wp_json_encode( $queries ) );
		}
	);
}
