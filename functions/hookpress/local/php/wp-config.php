<?php
// Written by hookpress.local.wordpress for a throwaway site. Not for production.
// In the package this is a template: hookpress.local.wordpress_files replaces each
// quoted @NAME@ placeholder with a PHP value (a quoted string, true or false).
define( 'DB_NAME', 'wordpress' );
define( 'DB_USER', 'root' );
define( 'DB_PASSWORD', '' );
define( 'DB_HOST', '@DB_HOST@' );
define( 'DB_CHARSET', 'utf8mb4' );
define( 'DB_COLLATE', '' );
define( 'AUTH_KEY', '@AUTH_KEY@' );
define( 'SECURE_AUTH_KEY', '@SECURE_AUTH_KEY@' );
define( 'LOGGED_IN_KEY', '@LOGGED_IN_KEY@' );
define( 'NONCE_KEY', '@NONCE_KEY@' );
define( 'AUTH_SALT', '@AUTH_SALT@' );
define( 'SECURE_AUTH_SALT', '@SECURE_AUTH_SALT@' );
define( 'LOGGED_IN_SALT', '@LOGGED_IN_SALT@' );
define( 'NONCE_SALT', '@NONCE_SALT@' );
$table_prefix = 'wp_';

define( 'WP_HOME', '@URL@' );
define( 'WP_SITEURL', '@URL@' );
// "local" lets application passwords work over plain HTTP.
define( 'WP_ENVIRONMENT_TYPE', 'local' );
define( 'WP_DEBUG', '@WP_DEBUG@' );
define( 'WP_DEBUG_LOG', '@WP_DEBUG_LOG@' );
define( 'WP_DEBUG_DISPLAY', '@WP_DEBUG_DISPLAY@' );
// No calls home (update checks, dashboard news): nothing here may leave the machine.
define( 'WP_HTTP_BLOCK_EXTERNAL', true );
define( 'AUTOMATIC_UPDATER_DISABLED', true );
define( 'WP_AUTO_UPDATE_CORE', false );
// Cron would fire loopback requests at random moments of a test.
define( 'DISABLE_WP_CRON', true );
define( 'FS_METHOD', 'direct' );

if ( ! defined( 'ABSPATH' ) ) {
	define( 'ABSPATH', __DIR__ . '/' );
}
require_once ABSPATH . 'wp-settings.php';
