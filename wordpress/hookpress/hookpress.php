<?php
/**
 * Plugin Name:       Hookpress
 * Description:       Receives webhook events relayed by hookpress and stores each one once as an AI event.
 * Version:           0.1.0
 * Requires at least: 6.1
 * Requires PHP:      7.4
 * Update URI:        false
 * Author:            hookpress
 * License:           Apache-2.0
 * License URI:       https://www.apache.org/licenses/LICENSE-2.0
 * Text Domain:       hookpress
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

define( 'HOOKPRESS_VERSION', '0.1.0' );
define( 'HOOKPRESS_FILE', __FILE__ );

require_once __DIR__ . '/includes/class-hookpress-ip.php';
require_once __DIR__ . '/includes/class-hookpress-access-guard.php';
require_once __DIR__ . '/includes/class-hookpress-settings.php';
require_once __DIR__ . '/includes/class-hookpress-settings-page.php';
require_once __DIR__ . '/includes/class-hookpress-installer.php';
require_once __DIR__ . '/includes/class-hookpress-post-type.php';
require_once __DIR__ . '/includes/class-hookpress-events-controller.php';
require_once __DIR__ . '/includes/class-hookpress-rate-limiter.php';
require_once __DIR__ . '/includes/class-hookpress-idempotency.php';
require_once __DIR__ . '/includes/class-hookpress-event-store.php';
require_once __DIR__ . '/includes/class-hookpress-post-projection.php';
require_once __DIR__ . '/includes/class-hookpress-event-query.php';
require_once __DIR__ . '/includes/class-hookpress-retention.php';
require_once __DIR__ . '/includes/class-hookpress-rest-controller.php';
require_once __DIR__ . '/includes/class-hookpress-ingest-request.php';
require_once __DIR__ . '/includes/class-hookpress-ingest-controller.php';
require_once __DIR__ . '/includes/class-hookpress-credentials-controller.php';
require_once __DIR__ . '/includes/class-hookpress-events-read-controller.php';
require_once __DIR__ . '/includes/class-hookpress-events-admin.php';

register_activation_hook( __FILE__, array( 'Hookpress_Installer', 'activate' ) );
register_deactivation_hook( __FILE__, array( 'Hookpress_Installer', 'deactivate' ) );

// Tables are created on activation; this catches an update that replaced the
// files without a reactivation, before the first request needs the new schema.
add_action( 'init', array( 'Hookpress_Installer', 'maybe_upgrade' ), 5 );
// The ingest role's capabilities come from this code, in every request, not
// from whatever the roles option held when the request started.
add_action( 'wp_roles_init', array( 'Hookpress_Installer', 'enforce_role' ) );

Hookpress_Post_Type::add_hooks();
Hookpress_Settings::add_hooks();
Hookpress_Ingest_Controller::add_hooks();
Hookpress_Credentials_Controller::add_hooks();
Hookpress_Access_Guard::add_hooks();
Hookpress_Events_Read_Controller::add_hooks();
Hookpress_Events_Admin::add_hooks();
Hookpress_Retention::add_hooks();

add_action( Hookpress_Idempotency::PURGE_HOOK, array( 'Hookpress_Idempotency', 'purge_expired' ) );
