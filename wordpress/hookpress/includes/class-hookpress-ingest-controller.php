<?php
/**
 * POST /wp-json/ai-guy/v1/ingest and /wp-json/ai-guy/v1/ingest/batch
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * The ingest route: the only way events get into WordPress.
 *
 * A request passes, in this order: Hookpress_Access_Guard (the IP allowlist
 * 403, application-password authentication and the ingest capability 401/403,
 * the media type and size 415/413, the token bucket 429) — before WordPress
 * parses and validates arguments, so a caller that may not deliver learns
 * nothing about the schema (the route is also left out of the /wp-json/
 * index) — then the argument schema (400), the Idempotency-Key (replay, 422
 * reused with another body) and the upsert.
 *
 * The batch route takes up to MAX_BATCH_RECORDS records and dispatches each
 * as a request to the single route, as core's batch endpoint does: every
 * record passes the same checks (one token of the bucket each, the batch's
 * own paying for its first), carries its own Idempotency-Key, and gets its
 * own answer.
 */
final class Hookpress_Ingest_Controller extends WP_REST_Controller {

	const ROUTE_NAMESPACE = 'ai-guy/v1';
	const ROUTE           = '/ingest';
	const BATCH_ROUTE     = '/ingest/batch';

	/** Records per batch request. */
	const MAX_BATCH_RECORDS = 100;

	/** Metadata, as stored (compact JSON). */
	const MAX_METADATA_BYTES = 65536;

	const MAX_SUMMARY_CHARS = 2000;

	const REPLAYED_HEADER = Hookpress_Idempotency::REPLAYED_HEADER;

	/** Headers of a record's answer that a batch response passes on. */
	const BATCH_HEADERS = array( 'Location', 'Retry-After', self::REPLAYED_HEADER );

	/** Fields the body must contain. */
	const REQUIRED = array( 'source', 'external_id', 'status', 'occurred_at' );

	/**
	 * Sets the route base.
	 */
	public function __construct() {
		$this->namespace = self::ROUTE_NAMESPACE;
		$this->rest_base = ltrim( self::ROUTE, '/' );
	}

	/**
	 * Registers hooks.
	 */
	public static function add_hooks() {
		add_action( 'rest_api_init', array( __CLASS__, 'register' ) );
	}

	/**
	 * rest_api_init callback.
	 */
	public static function register() {
		( new self() )->register_routes();
	}

	/**
	 * Registers the route.
	 */
	public function register_routes() {
		register_rest_route(
			$this->namespace,
			self::ROUTE,
			array(
				array(
					'methods'             => WP_REST_Server::CREATABLE,
					'callback'            => array( $this, 'create_item' ),
					'permission_callback' => array( $this, 'create_item_permissions_check' ),
					'args'                => $this->get_endpoint_args(),
					// Not listed in /wp-json/: the callers are configured, not
					// discovered. (Per endpoint: as a route option core ignores it.)
					'show_in_index'       => false,
				),
				'schema' => array( $this, 'get_public_item_schema' ),
			)
		);
		register_rest_route(
			$this->namespace,
			self::BATCH_ROUTE,
			array(
				array(
					'methods'             => WP_REST_Server::CREATABLE,
					'callback'            => array( $this, 'create_items' ),
					'permission_callback' => array( $this, 'create_item_permissions_check' ),
					'args'                => array(
						'records' => array(
							'description' => __( 'The records, each with its own Idempotency-Key.', 'hookpress' ),
							'type'        => 'array',
							'required'    => true,
							'minItems'    => 1,
							'maxItems'    => self::MAX_BATCH_RECORDS,
							'items'       => array(
								'type'                 => 'object',
								'properties'           => array(
									'idempotency_key' => array( 'type' => 'string' ),
									'record'          => array( 'type' => 'object' ),
								),
								'required'             => array( 'record' ),
								'additionalProperties' => false,
							),
						),
					),
					'show_in_index'       => false,
				),
			)
		);
	}

	/**
	 * Admits the request: the access guard's checks (again: the guard also
	 * runs them as filters, this is the route's own contract and holds even
	 * if those filters are removed).
	 *
	 * @param WP_REST_Request $request Request.
	 * @return true|WP_Error
	 */
	public function create_item_permissions_check( $request ) {
		return Hookpress_Access_Guard::admit( $request );
	}

	/**
	 * Stores one event: prepare it, claim its Idempotency-Key, upsert it,
	 * answer 201 with Location (200 when it was already there). The claim,
	 * the upsert (with its post) and the stored response are one transaction.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return WP_REST_Response
	 */
	public function create_item( $request ) {
		$event = $this->prepare_item_for_database( $request );
		if ( is_wp_error( $event ) ) {
			return self::error_response( $event );
		}
		$key = $this->idempotency_key( $request );
		if ( is_wp_error( $key ) ) {
			return self::error_response( $key );
		}

		$response = Hookpress_Event_Store::transaction(
			function () use ( $event, $key, $request ) {
				if ( null !== $key ) {
					$claim = Hookpress_Idempotency::claim( $key['key_hash'], $key['request_hash'] );
					if ( true !== $claim ) {
						return $claim; // The first response, replayed; or an error.
					}
				}
				$stored = Hookpress_Event_Store::upsert( $event );
				if ( is_wp_error( $stored ) ) {
					return $stored;
				}
				$response = $this->prepare_item_for_response( $stored, $request );
				if ( null !== $key ) {
					$completed = Hookpress_Idempotency::complete( $key['key_hash'], $response );
					if ( is_wp_error( $completed ) ) {
						return $completed;
					}
				}
				return $response;
			}
		);
		return is_wp_error( $response ) ? self::error_response( $response ) : $response;
	}

	/**
	 * Stores up to MAX_BATCH_RECORDS events, each exactly as the single route
	 * would (dispatched to it), and answers 207 with one answer per record,
	 * in order: {"responses": [{"status": 201, "body": {...}, "headers": {...}}]}.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return WP_REST_Response
	 */
	public function create_items( $request ) {
		// The records as sent: decoded as objects, so {} stays {} when each is
		// encoded again for its own request (WordPress's decoding makes it []).
		$decoded = json_decode( (string) $request->get_body() );
		if ( ! is_object( $decoded ) || ! isset( $decoded->records ) || ! is_array( $decoded->records ) ) {
			return self::error_response(
				new WP_Error( 'rest_invalid_json', __( 'The body must be a JSON object with a "records" list.', 'hookpress' ), array( 'status' => 400 ) )
			);
		}
		$server    = rest_get_server();
		$responses = array();
		foreach ( $decoded->records as $n => $item ) {
			$single = new WP_REST_Request( 'POST', '/' . self::ROUTE_NAMESPACE . self::ROUTE );
			if ( 0 === $n ) {
				Hookpress_Access_Guard::pay_with( $single, $request );
			}
			$single->set_header( 'Content-Type', 'application/json' );
			if ( isset( $item->idempotency_key ) ) {
				$single->set_header( 'Idempotency-Key', (string) $item->idempotency_key );
			}
			$single->set_body( (string) wp_json_encode( $item->record, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE ) );
			// As core's batch endpoint does: a refusal may come back as a bare
			// WP_Error, and rest_post_dispatch adds what a response gets on its
			// way out (Retry-After, among others).
			$answer = $server->dispatch( $single );
			if ( is_wp_error( $answer ) ) {
				$answer = rest_convert_error_to_response( $answer );
			}
			$answer  = apply_filters( 'rest_post_dispatch', rest_ensure_response( $answer ), $server, $single );
			$headers = array_intersect_key( $answer->get_headers(), array_flip( self::BATCH_HEADERS ) );

			$responses[] = array(
				'status'  => $answer->get_status(),
				'body'    => $server->response_to_data( $answer, false ),
				'headers' => $headers ? $headers : new stdClass(),
			);
		}
		return new WP_REST_Response( array( 'responses' => $responses ), 207 );
	}

	/**
	 * The event to store, from a request's JSON body; or why not (400, 413).
	 *
	 * The JSON body is the whole request: a field must not be filled in from
	 * the query string, and a field we do not know is an error, not something
	 * to drop silently.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return array|WP_Error
	 */
	protected function prepare_item_for_database( $request ) {
		$body = $request->get_json_params();
		if ( ! is_array( $body ) || ( $body && self::is_list( $body ) ) ) {
			return new WP_Error( 'rest_invalid_json', __( 'The body must be a JSON object.', 'hookpress' ), array( 'status' => 400 ) );
		}
		$valid = rest_validate_value_from_schema( $body, $this->get_body_schema(), 'body' );
		if ( is_wp_error( $valid ) ) {
			return new WP_Error(
				'rest_invalid_param',
				$valid->get_error_message(),
				array(
					'status' => 400,
					'reason' => $valid->get_error_code(),
				)
			);
		}

		$metadata = self::metadata_json( $request->get_body() );
		if ( strlen( $metadata ) > self::MAX_METADATA_BYTES ) {
			return new WP_Error(
				'hookpress_metadata_too_large',
				/* translators: %d: limit in bytes */
				sprintf( __( 'metadata must encode to at most %d bytes.', 'hookpress' ), self::MAX_METADATA_BYTES ),
				array( 'status' => 413 )
			);
		}

		$occurred = self::parse_time( (string) $request['occurred_at'] );
		return array(
			'source'         => (string) $request['source'],
			'external_id'    => (string) $request['external_id'],
			'status'         => (string) $request['status'],
			'summary'        => (string) $request['summary'],
			'metadata'       => $metadata,
			'occurred_at'    => $occurred['text'],
			'occurred_at_us' => $occurred['us'],
		);
	}

	/**
	 * The answer for a stored event: 201 with Location when it was created.
	 *
	 * "id" is the event's post while posts are on (what wp/v2/ai-events
	 * serves), else its row in the events table (ai-guy/v1/events).
	 *
	 * @param array           $stored  Hookpress_Event_Store::upsert()'s result.
	 * @param WP_REST_Request $request Request.
	 * @return WP_REST_Response
	 */
	public function prepare_item_for_response( $stored, $request ) {
		$event   = $stored['event'];
		$post_id = (int) $event['post_id'];
		$as_post = Hookpress_Settings::create_posts() && $post_id > 0;
		$data    = array(
			'id'          => $as_post ? $post_id : (int) $event['id'],
			'event_id'    => (int) $event['id'],
			'post_id'     => $post_id > 0 ? $post_id : null,
			'external_id' => $event['external_id'],
			'source'      => $event['source'],
			'result'      => $stored['result'],
		);
		$created  = Hookpress_Event_Store::CREATED === $stored['result'];
		$response = new WP_REST_Response( $data, $created ? 201 : 200 );
		if ( $created ) {
			$location = $as_post
				? 'wp/v2/' . Hookpress_Post_Type::REST_BASE . '/' . $post_id
				: Hookpress_Events_Read_Controller::ROUTE_NAMESPACE . Hookpress_Events_Read_Controller::ROUTE . '/' . (int) $event['id'];
			$response->header( 'Location', rest_url( $location ) );
		}
		return $response;
	}

	/**
	 * The request's Idempotency-Key, hashed for storage with the body's hash.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return array{key_hash: string, request_hash: string}|null|WP_Error Null without a key.
	 */
	private function idempotency_key( $request ) {
		$key = $request->get_header( 'idempotency_key' );
		if ( null === $key ) {
			return null;
		}
		if ( ! preg_match( '/\A[\x21-\x7e]{1,255}\z/', $key ) ) {
			return new WP_Error( 'hookpress_invalid_idempotency_key', __( 'Idempotency-Key must be 1 to 255 visible ASCII characters.', 'hookpress' ), array( 'status' => 400 ) );
		}
		return array(
			'key_hash'     => Hookpress_Idempotency::key_hash( get_current_user_id(), $key ),
			'request_hash' => hash( 'sha256', (string) wp_json_encode( self::canonical( $request->get_json_params() ) ) ),
		);
	}

	/**
	 * Argument schema of the route, with validate and sanitize callbacks.
	 *
	 * @param string $method Unused; the route only creates.
	 * @return array
	 */
	public function get_endpoint_args_for_item_schema( $method = WP_REST_Server::CREATABLE ) {
		return $this->get_endpoint_args();
	}

	/**
	 * Argument schema of the route, with validate and sanitize callbacks.
	 *
	 * @return array
	 */
	public function get_endpoint_args() {
		$args = array();
		foreach ( self::properties() as $name => $schema ) {
			$schema['required']          = in_array( $name, self::REQUIRED, true );
			$schema['validate_callback'] = array( __CLASS__, 'validate_arg' );
			$schema['sanitize_callback'] = array( __CLASS__, 'sanitize_arg' );
			$args[ $name ]               = $schema;
		}
		return $args;
	}

	/**
	 * The request body as one JSON Schema object.
	 *
	 * @return array
	 */
	public function get_body_schema() {
		return array(
			'$schema'              => 'http://json-schema.org/draft-04/schema#',
			'title'                => 'hookpress-ingest-request',
			'type'                 => 'object',
			'properties'           => self::properties(),
			'required'             => self::REQUIRED,
			'additionalProperties' => false,
		);
	}

	/**
	 * Response schema.
	 *
	 * @return array
	 */
	public function get_item_schema() {
		if ( $this->schema ) {
			return $this->add_additional_fields_schema( $this->schema );
		}
		$this->schema = array(
			'$schema'    => 'http://json-schema.org/draft-04/schema#',
			'title'      => 'hookpress-ingest-result',
			'type'       => 'object',
			'properties' => array(
				'id'          => array(
					'description' => __( 'Id of the ai_event post while posts are on, else event_id.', 'hookpress' ),
					'type'        => 'integer',
					'readonly'    => true,
				),
				'event_id'    => array(
					'description' => __( 'Id of the event in the events table (ai-guy/v1/events/{id}).', 'hookpress' ),
					'type'        => 'integer',
					'readonly'    => true,
				),
				'post_id'     => array(
					'description' => __( 'Id of its ai_event post, or null.', 'hookpress' ),
					'type'        => array( 'integer', 'null' ),
					'readonly'    => true,
				),
				'external_id' => array(
					'description' => __( 'External id of the event.', 'hookpress' ),
					'type'        => 'string',
					'readonly'    => true,
				),
				'source'      => array(
					'description' => __( 'Source of the event.', 'hookpress' ),
					'type'        => 'string',
					'readonly'    => true,
				),
				'result'      => array(
					'description' => __( 'created (201); updated, unchanged, or stale when the stored event is newer (200).', 'hookpress' ),
					'type'        => 'string',
					'enum'        => array( Hookpress_Event_Store::CREATED, Hookpress_Event_Store::UPDATED, Hookpress_Event_Store::UNCHANGED, Hookpress_Event_Store::STALE ),
					'readonly'    => true,
				),
			),
		);
		return $this->add_additional_fields_schema( $this->schema );
	}

	/**
	 * Validates one argument: the schema first, then what JSON Schema as
	 * WordPress implements it cannot say.
	 *
	 * @param mixed           $value   Value.
	 * @param WP_REST_Request $request Request.
	 * @param string          $param   Name.
	 * @return true|WP_Error
	 */
	public static function validate_arg( $value, $request, $param ) {
		$valid = rest_validate_request_arg( $value, $request, $param );
		if ( is_wp_error( $valid ) ) {
			return $valid;
		}
		$problem = self::check_field( $param, $value );
		if ( null === $problem ) {
			return true;
		}
		return new WP_Error( 'rest_invalid_param', $problem, array( 'status' => 400 ) );
	}

	/**
	 * Sanitizes one argument.
	 *
	 * @param mixed           $value   Value.
	 * @param WP_REST_Request $request Request.
	 * @param string          $param   Name.
	 * @return mixed
	 */
	public static function sanitize_arg( $value, $request, $param ) {
		$value = rest_sanitize_request_arg( $value, $request, $param );
		switch ( $param ) {
			case 'summary':
				return self::sanitize_summary( $value );
			case 'status':
				return sanitize_text_field( (string) $value );
			default:
				// source is pattern-bound, external_id must round-trip exactly
				// (it is matched, and escaped wherever it is shown), metadata
				// is stored as the JSON the caller sent.
				return $value;
		}
	}

	/**
	 * Plain text: tags (and script/style bodies) removed, control characters
	 * other than tab and newline removed, invalid UTF-8 dropped.
	 *
	 * Not sanitize_textarea_field(): it also deletes anything that looks like a
	 * percent-encoded octet, so "100% accurate" would lose "% ac".
	 *
	 * @param mixed $value Raw summary.
	 * @return string
	 */
	public static function sanitize_summary( $value ) {
		if ( ! is_string( $value ) ) {
			return '';
		}
		$text = wp_check_invalid_utf8( $value );
		$text = wp_strip_all_tags( $text );
		$text = preg_replace( '/[\x00-\x08\x0b-\x1f\x7f]/', '', $text );
		return trim( (string) $text );
	}

	/**
	 * Parses an RFC 3339 date-time with a mandatory offset.
	 *
	 * WordPress's "date-time" format accepts a time without an offset, which
	 * would be read in the server's time zone: the same event would order
	 * differently on two servers. Fractions beyond microseconds are truncated.
	 *
	 * @param string $value Text.
	 * @return array{text: string, us: int}|null UTC text and microseconds since the epoch.
	 */
	public static function parse_time( $value ) {
		if ( ! is_string( $value ) || ! preg_match( '/\A(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(?:([Zz])|([+-])(\d{2}):(\d{2}))\z/', $value, $m ) ) {
			return null;
		}
		list( , $year, $month, $day, $hour, $minute, $second ) = array_map( 'intval', array_slice( $m, 0, 7 ) );
		if ( ! checkdate( $month, $day, $year ) || $hour > 23 || $minute > 59 || $second > 60 ) {
			return null;
		}
		$fraction = isset( $m[7] ) ? substr( str_pad( $m[7], 6, '0' ), 0, 6 ) : '000000';
		if ( 60 === $second ) {
			// A leap second: the last representable instant of that minute.
			$second   = 59;
			$fraction = '999999';
		}
		$offset = 0;
		if ( ! empty( $m[9] ) ) {
			$offset_hours   = (int) $m[10];
			$offset_minutes = (int) $m[11];
			if ( $offset_hours > 23 || $offset_minutes > 59 ) {
				return null;
			}
			$offset = ( '-' === $m[9] ? -1 : 1 ) * ( $offset_hours * 3600 + $offset_minutes * 60 );
		}
		// Not gmmktime(): it reads the years 0-100 as 1970-2069.
		$seconds = ( new DateTimeImmutable( '@0' ) )->setDate( $year, $month, $day )->setTime( $hour, $minute, $second )->getTimestamp() - $offset;
		$text    = gmdate( 'Y-m-d\TH:i:s', $seconds );
		if ( '000000' !== $fraction ) {
			$text .= '.' . rtrim( $fraction, '0' );
		}
		return array(
			'text' => $text . 'Z',
			'us'   => $seconds * 1000000 + (int) $fraction,
		);
	}

	/**
	 * Field schemas shared by the arguments and the body schema.
	 *
	 * @return array
	 */
	private static function properties() {
		return array(
			'source'      => array(
				'description' => __( 'Source the event came from: lower-case letters, digits, "_" and "-".', 'hookpress' ),
				'type'        => 'string',
				'minLength'   => 1,
				'maxLength'   => 64,
				'pattern'     => '^[a-z0-9][a-z0-9_-]*$',
			),
			'external_id' => array(
				'description' => __( 'The provider\'s id of the event; with source, the key of the upsert.', 'hookpress' ),
				'type'        => 'string',
				'minLength'   => 1,
				'maxLength'   => 256,
			),
			'status'      => array(
				'description' => __( 'Status reported by the provider.', 'hookpress' ),
				'type'        => 'string',
				'minLength'   => 1,
				'maxLength'   => 64,
			),
			'summary'     => array(
				'description' => __( 'Plain-text summary; HTML is stripped.', 'hookpress' ),
				'type'        => array( 'string', 'null' ),
				'maxLength'   => self::MAX_SUMMARY_CHARS,
			),
			'metadata'    => array(
				'description'          => __( 'Any JSON object, at most 64 KiB encoded.', 'hookpress' ),
				'type'                 => array( 'object', 'null' ),
				'additionalProperties' => true,
			),
			'occurred_at' => array(
				'description' => __( 'When the event happened: RFC 3339 with an offset, e.g. 2025-01-31T12:00:00Z.', 'hookpress' ),
				'type'        => 'string',
				'format'      => 'date-time',
			),
		);
	}

	/**
	 * Checks beyond the schema. Returns a message, or null when fine.
	 *
	 * @param string $param Name.
	 * @param mixed  $value Value (already of the schema's type).
	 * @return string|null
	 */
	private static function check_field( $param, $value ) {
		switch ( $param ) {
			case 'source':
			case 'external_id':
			case 'status':
				// "$" in the schema pattern also matches before a final newline.
				if ( preg_match( '/[\x00-\x1f\x7f]/', (string) $value ) ) {
					/* translators: %s: parameter name */
					return sprintf( __( '%s must not contain control characters.', 'hookpress' ), $param );
				}
				return null;
			case 'metadata':
				if ( null === $value || ( is_array( $value ) && ( ! $value || ! self::is_list( $value ) ) ) ) {
					return null;
				}
				return __( 'metadata must be a JSON object.', 'hookpress' );
			case 'occurred_at':
				if ( null === self::parse_time( $value ) ) {
					return __( 'occurred_at must be an RFC 3339 date-time with a time zone offset, e.g. 2025-01-31T12:00:00Z.', 'hookpress' );
				}
				return null;
			default:
				return null;
		}
	}

	/**
	 * The metadata exactly as sent, as compact JSON ("{}" when absent).
	 *
	 * Decoded again from the raw body as objects, because the associative
	 * decoding WordPress uses turns {} into [] and loses the difference.
	 *
	 * @param string $raw_body Request body.
	 * @return string
	 */
	private static function metadata_json( $raw_body ) {
		$decoded  = json_decode( (string) $raw_body );
		$metadata = is_object( $decoded ) && isset( $decoded->metadata ) && is_object( $decoded->metadata ) ? $decoded->metadata : new stdClass();
		return (string) wp_json_encode( $metadata, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE );
	}

	/**
	 * Sorts object keys recursively, so a request hash does not depend on key order.
	 *
	 * @param mixed $value Decoded JSON.
	 * @return mixed
	 */
	private static function canonical( $value ) {
		if ( ! is_array( $value ) ) {
			return $value;
		}
		if ( ! self::is_list( $value ) ) {
			ksort( $value, SORT_STRING );
		}
		return array_map( array( __CLASS__, 'canonical' ), $value );
	}

	/**
	 * Whether an array is a JSON list (keys 0..n-1 in order).
	 *
	 * @param array $value Array.
	 * @return bool
	 */
	private static function is_list( array $value ) {
		return array_keys( $value ) === range( 0, count( $value ) - 1 );
	}

	/**
	 * An error as a response, with Retry-After when the error says when.
	 *
	 * @param WP_Error $error Error.
	 * @return WP_REST_Response
	 */
	private static function error_response( WP_Error $error ) {
		$response = rest_convert_error_to_response( $error );
		$data     = $error->get_error_data();
		if ( is_array( $data ) && isset( $data['retry_after'] ) ) {
			$response->header( 'Retry-After', (string) max( 1, (int) $data['retry_after'] ) );
		}
		return $response;
	}
}
