<?php
/**
 * What the plugin's own ai-guy/v1 controllers share.
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * One owner for the namespace, the route base, the hook registration and the
 * shape of a confined write route.
 *
 * A subclass sets ROUTE and implements register_routes(). The write routes
 * (ingest, ingest/batch, credentials, credentials/retire-others) are all
 * CREATABLE, admitted by Hookpress_Access_Guard and left out of the /wp-json/
 * index: the callers are configured, not discovered. (show_in_index is set per
 * endpoint: as a route option core ignores it.)
 */
abstract class Hookpress_Rest_Controller extends WP_REST_Controller {

	const ROUTE_NAMESPACE = 'ai-guy/v1';

	/**
	 * Sets the route base.
	 */
	public function __construct() {
		$this->namespace = self::ROUTE_NAMESPACE;
		$this->rest_base = ltrim( static::ROUTE, '/' );
	}

	/**
	 * Registers hooks.
	 */
	public static function add_hooks() {
		add_action( 'rest_api_init', array( static::class, 'register' ) );
	}

	/**
	 * rest_api_init callback.
	 */
	public static function register() {
		( new static() )->register_routes();
	}

	/**
	 * Registers a write route for callers the access guard admits.
	 *
	 * @param string   $path       Route below the namespace.
	 * @param callable $callback   What answers it.
	 * @param array    $args       Argument schema.
	 * @param callable $permission Permission callback; the guard unless the
	 *                             route wraps it.
	 * @param bool     $schema     Whether the route publishes the item schema.
	 */
	protected function register_write_route( $path, $callback, $args, $permission = array( 'Hookpress_Access_Guard', 'admit' ), $schema = false ) {
		$route = array(
			array(
				'methods'             => WP_REST_Server::CREATABLE,
				'callback'            => $callback,
				'permission_callback' => $permission,
				'args'                => $args,
				'show_in_index'       => false,
			),
		);
		if ( $schema ) {
			$route['schema'] = array( $this, 'get_public_item_schema' );
		}
		register_rest_route( $this->namespace, $path, $route );
	}
}
