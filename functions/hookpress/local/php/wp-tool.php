<?php
// Run with php-cli by hookpress.local.wordpress:
//   php wp-tool.php DOCROOT COMMAND ARGS_FILE RESULT_FILE
// Writes a JSON result to RESULT_FILE; anything else it prints is log.
list( , $hp_docroot, $hp_command, $hp_args_file, $hp_result_file ) = $argv;
$hp_args = json_decode( file_get_contents( $hp_args_file ), true );

function hp_done( $result ) {
	global $hp_result_file;
	file_put_contents( $hp_result_file, json_encode( $result ) );
	exit( 0 );
}

function hp_fail( $message ) {
	fwrite( STDERR, "wp-tool: $message\n" );
	exit( 1 );
}

// A throwaway site sends no mail: there is no MTA and nobody to read it.
// Both are pluggable, so defining them first replaces WordPress's own.
function wp_mail() {
	return true;
}
function wp_new_blog_notification() {
}

$_SERVER['HTTP_HOST']       = '127.0.0.1';
$_SERVER['SERVER_NAME']     = '127.0.0.1';
$_SERVER['REQUEST_URI']     = '/';
$_SERVER['REQUEST_METHOD']  = 'GET';
$_SERVER['SERVER_PROTOCOL'] = 'HTTP/1.1';
$_SERVER['REMOTE_ADDR']     = '127.0.0.1';

if ( 'install' === $hp_command ) {
	mysqli_report( MYSQLI_REPORT_OFF );
	$hp_db = mysqli_init();
	if ( ! @$hp_db->real_connect( 'localhost', 'root', '', '', 0, $hp_args['socket'] ) ) {
		hp_fail( 'cannot connect to MariaDB: ' . mysqli_connect_error() );
	}
	$hp_create = 'CREATE DATABASE IF NOT EXISTS `wordpress`'
		. ' CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci';
	if ( ! $hp_db->query( $hp_create ) ) {
		hp_fail( 'cannot create the database: ' . $hp_db->error );
	}
	$hp_db->close();
	define( 'WP_INSTALLING', true );
}

require $hp_docroot . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';

function hp_app_password( $user_id ) {
	$created = WP_Application_Passwords::create_new_application_password(
		$user_id,
		array( 'name' => 'hookpress-local' )
	);
	if ( is_wp_error( $created ) ) {
		hp_fail( 'application password: ' . $created->get_error_message() );
	}
	return $created[0];
}

function hp_user( $login, $role ) {
	$user_id = wp_insert_user(
		array(
			'user_login' => $login,
			'user_pass'  => wp_generate_password( 32, true, true ),
			'user_email' => $login . '@example.invalid',
			'role'       => $role,
		)
	);
	if ( is_wp_error( $user_id ) ) {
		hp_fail( "user $login: " . $user_id->get_error_message() );
	}
	$user = get_user_by( 'id', $user_id );
	if ( array( $role ) !== array_values( $user->roles ) ) {
		$roles = implode( ',', $user->roles );
		hp_fail( "user $login has roles $roles, expected only $role" );
	}
	return $user_id;
}

function hp_set_options( $args ) {
	$names = array(
		'allowlist'       => 'hookpress_allowlist',
		'trusted_proxies' => 'hookpress_trusted_proxies',
		'rate_per_minute' => 'hookpress_rate_per_minute',
		'burst'           => 'hookpress_burst',
	);
	foreach ( $names as $key => $option ) {
		if ( array_key_exists( $key, $args ) ) {
			update_option( $option, $args[ $key ] );
		}
	}
	if ( array_key_exists( 'rate_per_minute', $args ) || array_key_exists( 'burst', $args ) ) {
		Hookpress_Rate_Limiter::reset();
	}
}

switch ( $hp_command ) {
	case 'install':
		require_once ABSPATH . 'wp-admin/includes/upgrade.php';
		if ( is_blog_installed() ) {
			hp_fail( 'WordPress is already installed in this database' );
		}
		$hp_installed = wp_install(
			'hookpress local',
			$hp_args['admin_user'],
			$hp_args['admin_user'] . '@example.invalid',
			false,
			'',
			wp_slash( $hp_args['admin_password'] )
		);
		// Avatars are images from gravatar.com on every wp-admin page: a page
		// of this site would wait on a host off the machine to finish loading.
		update_option( 'show_avatars', 0 );
		hp_done( array( 'user_id' => $hp_installed['user_id'] ) );
		break;

	case 'configure':
		global $wp_rewrite;
		$wp_rewrite->set_permalink_structure( '/%postname%/' );
		$wp_rewrite->flush_rules( false );
		$hp_activated = activate_plugin( 'hookpress/hookpress.php' );
		if ( is_wp_error( $hp_activated ) ) {
			hp_fail( 'activate hookpress: ' . $hp_activated->get_error_message() );
		}
		// The plugin was included after "init": register its settings (and
		// their sanitizers) by hand for the options below.
		Hookpress_Settings::register_settings();
		$hp_admin  = get_user_by( 'login', $hp_args['admin_user'] );
		$hp_ingest = hp_user( $hp_args['ingest_user'], $hp_args['ingest_role'] );
		hp_set_options( $hp_args );
		hp_done(
			array(
				'admin_app_password'  => hp_app_password( $hp_admin->ID ),
				'ingest_app_password' => hp_app_password( $hp_ingest ),
			)
		);
		break;

	case 'set-options':
		hp_set_options( $hp_args );
		hp_done( array() );
		break;

	case 'create-user':
		$hp_user = hp_user( $hp_args['login'], $hp_args['role'] );
		hp_done( array( 'app_password' => hp_app_password( $hp_user ) ) );
		break;

	case 'eval':
		ob_start();
		eval( $hp_args['code'] ); // phpcs:ignore Squiz.PHP.Eval -- test harness only.
		hp_done( array( 'output' => ob_get_clean() ) );
		break;

	case 'run':
		// A PHP file (a test's), run in this scope: $hp_args is then its own arguments.
		$hp_file = $hp_args['file'];
		$hp_args = $hp_args['args'];
		ob_start();
		require $hp_file;
		hp_done( array( 'output' => ob_get_clean() ) );
		break;

	case 'sql':
		$wpdb->suppress_errors( true );
		$hp_rows = $wpdb->get_results( $hp_args['statement'], ARRAY_A );
		if ( '' !== $wpdb->last_error ) {
			hp_fail( 'sql: ' . $wpdb->last_error );
		}
		hp_done( array( 'rows' => is_array( $hp_rows ) ? $hp_rows : array() ) );
		break;

	case 'deactivate':
		deactivate_plugins( 'hookpress/hookpress.php', true );
		hp_done( array() );
		break;

	case 'uninstall':
		if ( is_plugin_active( 'hookpress/hookpress.php' ) ) {
			hp_fail( 'deactivate the plugin before uninstalling it' );
		}
		if ( ! uninstall_plugin( 'hookpress/hookpress.php' ) ) {
			hp_fail( 'uninstall_plugin() did not run uninstall.php' );
		}
		hp_done( array() );
		break;

	default:
		hp_fail( "unknown command $hp_command" );
}
