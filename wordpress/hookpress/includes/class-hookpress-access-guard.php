<?php
/**
 * Who may reach the ingest identity's routes, and what that identity may reach.
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * The plugin's access policy, in one place.
 *
 * Two rules, both keyed on the handler WordPress dispatches to (its callback's
 * controller), never on the route string, because the router reaches a
 * handler through many strings: pretty and plain permalinks (`?rest_route=`),
 * any letter case, trailing slashes and backslashes, percent-encoded
 * characters, a trailing newline (PCRE's `$` matches before one), `_method`
 * and `X-HTTP-Method-Override`, and `/batch/v1`, which dispatches
 * sub-requests of its own.
 *
 * 1. A request for a **confined handler** (a method of one of CONTROLLERS:
 *    the ingest route and the credentials route) is admitted only from an
 *    allowlisted address, authenticated by an application password (a cookie
 *    session is not accepted), by a user holding the ingest capability, with
 *    a JSON body of at most MAX_BODY_BYTES, and with a token from the bucket.
 * 2. The **ingest identity** (a user holding the ingest capability or role)
 *    reaches nothing but confined handlers: no core route, not its own
 *    account, not its application passwords, not `/batch/v1`, from any
 *    address; and its application password is refused outside the REST API
 *    (XML-RPC).
 *
 * The checks run at three points, each complete on its own:
 * `rest_pre_dispatch` (before WordPress parses and validates arguments, so a
 * caller that may not deliver learns nothing about the schema and costs
 * nothing but the check; it also answers OPTIONS, which core would otherwise
 * answer with the route's schema), `rest_request_before_callbacks` (the
 * handler WordPress actually matched, for every request it dispatches,
 * batch sub-requests included) and the routes' `permission_callback`. A
 * request takes at most one token, however many of these points it passes.
 */
final class Hookpress_Access_Guard {

	/** Controllers whose routes only the ingest identity may call, and that is all it may call. */
	const CONTROLLERS = array( 'Hookpress_Ingest_Controller', 'Hookpress_Credentials_Controller' );

	/** Whole request body of a confined route; a generous bound above the sum of the ingest field limits. */
	const MAX_BODY_BYTES = 262144;

	/**
	 * Token-bucket outcome per request object, so the three check points spend one token.
	 *
	 * @var SplObjectStorage|null
	 */
	private static $spent = null;

	/**
	 * Registers hooks.
	 */
	public static function add_hooks() {
		// Priority 5: ahead of core's OPTIONS handler (10).
		add_filter( 'rest_pre_dispatch', array( __CLASS__, 'pre_dispatch' ), 5, 3 );
		// Last: a later filter must not be able to turn a refusal back into null.
		add_filter( 'rest_request_before_callbacks', array( __CLASS__, 'before_callbacks' ), PHP_INT_MAX, 3 );
		add_filter( 'rest_post_dispatch', array( __CLASS__, 'retry_after_header' ), 10, 1 );
		add_action( 'wp_authenticate_application_password_errors', array( __CLASS__, 'rest_only' ), 10, 2 );
	}

	/**
	 * Everything a confined handler requires of a request.
	 *
	 * Safe to call more than once per request: the checks are repeated, the
	 * token is taken once.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return true|WP_Error
	 */
	public static function admit( $request ) {
		global $wpdb;
		// A database error is never written into a JSON answer, whatever
		// WP_DEBUG_DISPLAY says; it still goes to the error log.
		$wpdb->hide_errors();

		$client = self::client_address();
		if ( null === $client || ! Hookpress_Ip::in_ranges( $client, Hookpress_Settings::allowlist() ) ) {
			$data = array( 'status' => 403 );
			if ( defined( 'WP_DEBUG' ) && WP_DEBUG ) {
				$data['client_address'] = Hookpress_Ip::to_text( $client );
			}
			return new WP_Error( 'hookpress_address_forbidden', __( 'Requests from this address are not allowed.', 'hookpress' ), $data );
		}

		$user = wp_get_current_user();
		if ( ! $user->exists() ) {
			return new WP_Error( 'rest_not_logged_in', __( 'Authentication is required: use an application password.', 'hookpress' ), array( 'status' => 401 ) );
		}
		if ( null === rest_get_authenticated_app_password() ) {
			return new WP_Error( 'hookpress_application_password_required', __( 'Only application-password authentication is accepted here.', 'hookpress' ), array( 'status' => 401 ) );
		}
		if ( ! self::holds_capability( $user ) ) {
			return new WP_Error( 'rest_forbidden', __( 'Sorry, you are not allowed to deliver events.', 'hookpress' ), array( 'status' => rest_authorization_required_code() ) );
		}

		if ( 'POST' !== $request->get_method() ) {
			// Every confined handler takes POST only; core answers the rest
			// (404 for a method the route lacks, OPTIONS to this caller only).
			return true;
		}
		if ( ! $request->is_json_content_type() ) {
			return new WP_Error( 'hookpress_unsupported_media_type', __( 'The body must be JSON (Content-Type: application/json).', 'hookpress' ), array( 'status' => 415 ) );
		}
		if ( strlen( (string) $request->get_body() ) > self::MAX_BODY_BYTES ) {
			return new WP_Error( 'hookpress_payload_too_large', __( 'The request body is too large.', 'hookpress' ), array( 'status' => 413 ) );
		}
		return self::spend_token( $request );
	}

	/**
	 * Lets a request dispatched on behalf of another (a record of a batch)
	 * use the token that one already took, once: a batch's own token pays for
	 * its first record, so a batch of n records costs n tokens. Every check
	 * but the token still runs for the record.
	 *
	 * @param WP_REST_Request $request The dispatched request.
	 * @param WP_REST_Request $paid_by The request that took the token.
	 */
	public static function pay_with( $request, $paid_by ) {
		if ( null !== self::$spent && self::$spent->contains( $paid_by ) && true === self::$spent[ $paid_by ] ) {
			self::$spent[ $request ] = true;
		}
	}

	/**
	 * Whether a user is the ingest identity: holds the ingest capability
	 * (through a role or a grant of its own) or the ingest role.
	 *
	 * @param WP_User $user User.
	 * @return bool
	 */
	public static function is_ingest_identity( $user ) {
		return $user instanceof WP_User && $user->exists()
			&& ( self::holds_capability( $user ) || in_array( Hookpress_Installer::ROLE, (array) $user->roles, true ) );
	}

	/**
	 * Whether a matched handler is one of the confined routes' handlers.
	 *
	 * @param array $handler Handler as registered (callback, permission_callback, ...).
	 * @return bool
	 */
	public static function is_confined_handler( $handler ) {
		$callback = is_array( $handler ) && isset( $handler['callback'] ) ? $handler['callback'] : null;
		if ( ! is_array( $callback ) || ! isset( $callback[0] ) ) {
			return false;
		}
		foreach ( self::CONTROLLERS as $controller ) {
			if ( is_a( $callback[0], $controller, true ) ) {
				return true;
			}
		}
		return false;
	}

	/**
	 * rest_pre_dispatch: refuses early, before arguments are parsed.
	 *
	 * Which handler the server will pick is decided after this filter, so a
	 * request counts as bound for a confined handler when any route that
	 * matches its path the way the server matches it (anchored, case-blind)
	 * has one; rest_request_before_callbacks then sees the exact handler.
	 *
	 * @param mixed           $result  A response another filter already decided.
	 * @param WP_REST_Server  $server  Server.
	 * @param WP_REST_Request $request Request.
	 * @return mixed
	 */
	public static function pre_dispatch( $result, $server, $request ) {
		if ( null !== $result ) {
			return $result;
		}
		if ( self::path_reaches_confined_handler( $server, $request->get_route() ) ) {
			$admitted = self::admit( $request );
			return is_wp_error( $admitted ) ? $admitted : $result;
		}
		if ( self::is_ingest_identity( wp_get_current_user() ) ) {
			return self::confined();
		}
		return $result;
	}

	/**
	 * rest_request_before_callbacks: the handler WordPress matched.
	 *
	 * Runs for every dispatched request, batch sub-requests included. A
	 * refusal replaces whatever argument error the server found, so the
	 * schema is not disclosed to a caller who may not use it.
	 *
	 * @param WP_REST_Response|WP_HTTP_Response|WP_Error|mixed $response Result so far.
	 * @param array                                            $handler  Matched handler.
	 * @param WP_REST_Request                                  $request  Request.
	 * @return mixed
	 */
	public static function before_callbacks( $response, $handler, $request ) {
		if ( self::is_confined_handler( $handler ) ) {
			$admitted = self::admit( $request );
			return is_wp_error( $admitted ) ? $admitted : $response;
		}
		if ( self::is_ingest_identity( wp_get_current_user() ) ) {
			return self::confined();
		}
		return $response;
	}

	/**
	 * Refuses the ingest identity's application password outside the REST API
	 * (XML-RPC accepts application passwords too).
	 *
	 * @param WP_Error $error Collects reasons to refuse.
	 * @param WP_User  $user  User the password belongs to.
	 */
	public static function rest_only( $error, $user ) {
		if ( ! ( defined( 'REST_REQUEST' ) && REST_REQUEST ) && self::is_ingest_identity( $user ) ) {
			$error->add( 'hookpress_rest_only', __( 'This account may only deliver events through the REST API.', 'hookpress' ) );
		}
	}

	/**
	 * rest_post_dispatch: Retry-After on the plugin's errors that say when to retry.
	 *
	 * @param WP_HTTP_Response $response Response.
	 * @return WP_HTTP_Response
	 */
	public static function retry_after_header( $response ) {
		if ( ! $response instanceof WP_HTTP_Response || $response->get_status() < 400 ) {
			return $response;
		}
		$data    = $response->get_data();
		$headers = $response->get_headers();
		if ( is_array( $data ) && isset( $data['code'], $data['data']['retry_after'] ) && 0 === strpos( (string) $data['code'], 'hookpress_' ) && ! isset( $headers['Retry-After'] ) ) {
			$response->header( 'Retry-After', (string) max( 1, (int) $data['data']['retry_after'] ) );
		}
		return $response;
	}

	/**
	 * Whether a user holds the ingest capability explicitly.
	 *
	 * Read from the user's own capabilities, not through has_cap(): a
	 * multisite super admin "has" every capability, and must neither deliver
	 * events nor be confined to delivering them.
	 *
	 * @param WP_User $user User.
	 * @return bool
	 */
	private static function holds_capability( $user ) {
		return ! empty( $user->allcaps[ Hookpress_Installer::INGEST_CAP ] );
	}

	/**
	 * Whether some route matching this path, as the server matches it, has a confined handler.
	 *
	 * @param WP_REST_Server $server Server.
	 * @param string         $path   Route of the request.
	 * @return bool
	 */
	private static function path_reaches_confined_handler( $server, $path ) {
		foreach ( self::confined_routes( $server ) as $route ) {
			// The server's own match: '@^' . $route . '$@i' (see match_request_to_handler()).
			if ( preg_match( '@^' . $route . '$@i', (string) $path ) ) {
				return true;
			}
		}
		return false;
	}

	/**
	 * Route patterns with a confined handler, found once per server.
	 *
	 * @param WP_REST_Server $server Server.
	 * @return string[]
	 */
	private static function confined_routes( $server ) {
		static $found = array();
		$key = spl_object_hash( $server );
		if ( ! isset( $found[ $key ] ) ) {
			$found[ $key ] = array();
			foreach ( $server->get_routes() as $route => $handlers ) {
				foreach ( (array) $handlers as $handler ) {
					if ( self::is_confined_handler( $handler ) ) {
						$found[ $key ][] = $route;
						break;
					}
				}
			}
		}
		return $found[ $key ];
	}

	/**
	 * Takes one token for this request, once.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return true|WP_Error
	 */
	private static function spend_token( $request ) {
		if ( null === self::$spent ) {
			self::$spent = new SplObjectStorage();
		}
		if ( ! self::$spent->contains( $request ) ) {
			$taken = Hookpress_Rate_Limiter::take();
			if ( is_int( $taken ) ) {
				$taken = new WP_Error(
					'hookpress_rate_limited',
					__( 'Too many requests; retry after the number of seconds in Retry-After.', 'hookpress' ),
					array(
						'status'      => 429,
						'retry_after' => $taken,
					)
				);
			}
			self::$spent[ $request ] = $taken;
		}
		return self::$spent[ $request ];
	}

	/**
	 * The caller's address: REMOTE_ADDR, or X-Forwarded-For behind a trusted proxy.
	 *
	 * @return string|null Packed address.
	 */
	private static function client_address() {
		// phpcs:disable WordPress.Security.ValidatedSanitizedInput -- parsed as addresses, anything else is rejected.
		return Hookpress_Ip::client_address(
			isset( $_SERVER['REMOTE_ADDR'] ) ? (string) $_SERVER['REMOTE_ADDR'] : '',
			isset( $_SERVER['HTTP_X_FORWARDED_FOR'] ) ? (string) $_SERVER['HTTP_X_FORWARDED_FOR'] : null,
			Hookpress_Settings::trusted_proxies()
		);
		// phpcs:enable
	}

	/**
	 * The error for the ingest identity anywhere but a confined route.
	 *
	 * @return WP_Error
	 */
	private static function confined() {
		return new WP_Error(
			'hookpress_ingest_only',
			__( 'This account may only deliver events.', 'hookpress' ),
			array( 'status' => 403 )
		);
	}
}
