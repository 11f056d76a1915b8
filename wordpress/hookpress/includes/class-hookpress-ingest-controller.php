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
final class Hookpress_Ingest_Controller extends Hookpress_Rest_Controller {

	const ROUTE       = '/ingest';
	const BATCH_ROUTE = '/ingest/batch';

	/** Records per batch request. */
	const MAX_BATCH_RECORDS = 100;

	const REPLAYED_HEADER = Hookpress_Idempotency::REPLAYED_HEADER;

	/** Headers of a record's answer that a batch response passes on. */
	const BATCH_HEADERS = array( 'Location', 'Retry-After', self::REPLAYED_HEADER );

	/**
	 * Registers the route.
	 */
	public function register_routes() {
		$admit = array( $this, 'create_item_permissions_check' );
		$this->register_write_route( self::ROUTE, array( $this, 'create_item' ), $this->get_endpoint_args(), $admit, true );
		$this->register_write_route(
			self::BATCH_ROUTE,
			array( $this, 'create_items' ),
			array(
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
			$admit
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
		$key = Hookpress_Ingest_Request::idempotency_key( $request );
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
	 * @param WP_REST_Request $request Request.
	 * @return array|WP_Error
	 */
	protected function prepare_item_for_database( $request ) {
		return Hookpress_Ingest_Request::event( $request );
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
		return Hookpress_Ingest_Request::endpoint_args();
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
