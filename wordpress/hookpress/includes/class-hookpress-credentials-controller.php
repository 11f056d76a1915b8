<?php
/**
 * POST /wp-json/ai-guy/v1/credentials and /credentials/retire-others
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * Rotation of the ingest identity's own application password.
 *
 * The ingest identity may not reach core's application-password routes (a
 * leaked password would mint more passwords from anywhere), so rotation has
 * these two routes, confined like the ingest route (allowlisted address,
 * application password, ingest capability, a token from the bucket):
 *
 * - `POST credentials` creates a new application password for the caller and
 *   answers it once: `{uuid, password, name}` (201). Nothing is revoked.
 * - `POST credentials/retire-others`, sent **with the new password**, deletes
 *   every other application password of the caller, whoever created it, and
 *   answers `{uuid, revoked}`: the uuid of the password that authenticated,
 *   which proves the new password works before anything is revoked.
 */
final class Hookpress_Credentials_Controller extends Hookpress_Rest_Controller {

	const ROUTE = '/credentials';

	/**
	 * Registers the routes.
	 */
	public function register_routes() {
		$this->register_write_route(
			self::ROUTE,
			array( $this, 'create_item' ),
			array(
				'name' => array(
					'description' => __( 'Name of the new application password.', 'hookpress' ),
					'type'        => 'string',
					'minLength'   => 1,
					'maxLength'   => 100,
				),
			)
		);
		$this->register_write_route( self::ROUTE . '/retire-others', array( $this, 'retire_others' ), array() );
	}

	/**
	 * Creates an application password for the caller.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return WP_REST_Response|WP_Error
	 */
	public function create_item( $request ) {
		$name = isset( $request['name'] ) ? (string) $request['name'] : '';
		if ( '' === $name ) {
			$name = 'hookpress ' . gmdate( 'Y-m-d H:i:s' ) . ' ' . substr( wp_generate_uuid4(), 0, 8 );
		}
		$created = WP_Application_Passwords::create_new_application_password( get_current_user_id(), array( 'name' => $name ) );
		if ( is_wp_error( $created ) ) {
			$status = 'application_password_duplicate_name' === $created->get_error_code() ? 409 : 503;
			return new WP_Error( 'hookpress_credentials_failed', __( 'The application password could not be created.', 'hookpress' ), array( 'status' => $status ) );
		}
		list( $password, $item ) = $created;
		$response                = new WP_REST_Response(
			array(
				'uuid'     => $item['uuid'],
				'name'     => $item['name'],
				'password' => $password,
			),
			201
		);
		$response->header( 'Cache-Control', 'no-store' );
		return $response;
	}

	/**
	 * Deletes every application password of the caller but the one it used.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return WP_REST_Response|WP_Error
	 */
	public function retire_others( $request ) {
		$user_id = get_current_user_id();
		$current = (string) rest_get_authenticated_app_password();
		$revoked = 0;
		foreach ( WP_Application_Passwords::get_user_application_passwords( $user_id ) as $item ) {
			if ( $item['uuid'] === $current ) {
				continue;
			}
			if ( true !== WP_Application_Passwords::delete_application_password( $user_id, $item['uuid'] ) ) {
				return new WP_Error( 'hookpress_credentials_failed', __( 'An application password could not be deleted; retry.', 'hookpress' ), array( 'status' => 503 ) );
			}
			++$revoked;
		}
		return new WP_REST_Response(
			array(
				'uuid'    => $current,
				'revoked' => $revoked,
			),
			200
		);
	}
}
