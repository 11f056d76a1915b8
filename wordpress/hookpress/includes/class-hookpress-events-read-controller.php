<?php
/**
 * GET /wp-json/ai-guy/v1/events and /wp-json/ai-guy/v1/events/{id}
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * The events table over REST, read-only, for users who can read events.
 *
 * Works whether or not posts are created, with the filters of the Events
 * screen: source, status, external_id (exact), search (a prefix of the
 * external id), orderby occurred_at|received_at, order, page, per_page.
 * X-WP-Total counts up to Hookpress_Event_Query::MAX_COUNT; beyond that it
 * says MAX_COUNT + 1 and X-Hookpress-Total-Capped is "true".
 */
final class Hookpress_Events_Read_Controller extends Hookpress_Rest_Controller {

	const ROUTE = '/events';

	/**
	 * Registers the routes.
	 */
	public function register_routes() {
		register_rest_route(
			$this->namespace,
			self::ROUTE,
			array(
				array(
					'methods'             => WP_REST_Server::READABLE,
					'callback'            => array( $this, 'get_items' ),
					'permission_callback' => array( $this, 'get_items_permissions_check' ),
					'args'                => $this->get_collection_params(),
				),
				'schema' => array( $this, 'get_public_item_schema' ),
			)
		);
		register_rest_route(
			$this->namespace,
			self::ROUTE . '/(?P<id>[\d]+)',
			array(
				array(
					'methods'             => WP_REST_Server::READABLE,
					'callback'            => array( $this, 'get_item' ),
					'permission_callback' => array( $this, 'get_item_permissions_check' ),
					'args'                => array(
						'id' => array(
							'description' => __( 'Id of the event.', 'hookpress' ),
							'type'        => 'integer',
						),
					),
				),
				'schema' => array( $this, 'get_public_item_schema' ),
			)
		);
	}

	/**
	 * Who may list events: whoever may read them (the post type's
	 * edit_posts capability, administrators after activation).
	 *
	 * @param WP_REST_Request $request Request.
	 * @return true|WP_Error
	 */
	public function get_items_permissions_check( $request ) {
		if ( Hookpress_Events_Admin::can_read() ) {
			return true;
		}
		return new WP_Error(
			'rest_forbidden',
			__( 'Sorry, you are not allowed to read AI events.', 'hookpress' ),
			array( 'status' => rest_authorization_required_code() )
		);
	}

	/**
	 * Who may read one event.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return true|WP_Error
	 */
	public function get_item_permissions_check( $request ) {
		return $this->get_items_permissions_check( $request );
	}

	/**
	 * One page of events.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return WP_REST_Response
	 */
	public function get_items( $request ) {
		$query = new Hookpress_Event_Query(
			array(
				'source'      => $request['source'],
				'status'      => $request['status'],
				'external_id' => $request['external_id'],
				'search'      => $request['search'],
				'orderby'     => $request['orderby'],
				'order'       => $request['order'],
				'page'        => $request['page'],
				'per_page'    => $request['per_page'],
			)
		);
		$items = array();
		foreach ( $query->rows() as $row ) {
			$items[] = $this->prepare_response_for_collection( $this->prepare_item_for_response( $row, $request ) );
		}
		$total    = $query->total();
		$response = rest_ensure_response( $items );
		$response->header( 'X-WP-Total', (string) $total );
		$response->header( 'X-WP-TotalPages', (string) (int) ceil( $total / $query->args()['per_page'] ) );
		$response->header( 'X-Hookpress-Total-Capped', $total > Hookpress_Event_Query::MAX_COUNT ? 'true' : 'false' );
		return $response;
	}

	/**
	 * One event.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return WP_REST_Response|WP_Error
	 */
	public function get_item( $request ) {
		$row = Hookpress_Event_Store::find( (int) $request['id'] );
		if ( null === $row ) {
			return new WP_Error( 'rest_not_found', __( 'No event has this id.', 'hookpress' ), array( 'status' => 404 ) );
		}
		return $this->prepare_item_for_response( $row, $request );
	}

	/**
	 * An event as served.
	 *
	 * @param array           $row     Row.
	 * @param WP_REST_Request $request Request.
	 * @return WP_REST_Response
	 */
	public function prepare_item_for_response( $row, $request ) {
		$metadata = json_decode( (string) $row['metadata'] );
		$data     = array(
			'id'          => (int) $row['id'],
			'source'      => $row['source'],
			'external_id' => $row['external_id'],
			'status'      => $row['status'],
			'summary'     => $row['summary'],
			'metadata'    => is_object( $metadata ) ? $metadata : new stdClass(),
			'occurred_at' => Hookpress_Event_Store::rfc3339_us( $row['occurred_at_us'] ),
			'received_at' => Hookpress_Event_Store::rfc3339_datetime( $row['received_at'] ),
			'post_id'     => (int) $row['post_id'] > 0 ? (int) $row['post_id'] : null,
		);
		$response = rest_ensure_response( $data );
		$response->add_link( 'self', rest_url( $this->namespace . self::ROUTE . '/' . $data['id'] ) );
		if ( null !== $data['post_id'] ) {
			$response->add_link( 'post', rest_url( 'wp/v2/' . Hookpress_Post_Type::REST_BASE . '/' . $data['post_id'] ), array( 'embeddable' => false ) );
		}
		return $response;
	}

	/**
	 * The collection's filters.
	 *
	 * @return array
	 */
	public function get_collection_params() {
		return array(
			'page'        => array(
				'description' => __( 'Page of the collection.', 'hookpress' ),
				'type'        => 'integer',
				'default'     => 1,
				'minimum'     => 1,
			),
			'per_page'    => array(
				'description' => __( 'Events per page.', 'hookpress' ),
				'type'        => 'integer',
				'default'     => 10,
				'minimum'     => 1,
				'maximum'     => 100,
			),
			'source'      => array(
				'description' => __( 'Only events from this source.', 'hookpress' ),
				'type'        => 'string',
				'maxLength'   => 64,
			),
			'status'      => array(
				'description' => __( 'Only events with this status.', 'hookpress' ),
				'type'        => 'string',
				'maxLength'   => 64,
			),
			'external_id' => array(
				'description' => __( 'Only the event with this external id (exact match).', 'hookpress' ),
				'type'        => 'string',
				'maxLength'   => 256,
			),
			'search'      => array(
				'description' => __( 'Only events whose external id starts with this.', 'hookpress' ),
				'type'        => 'string',
				'maxLength'   => 256,
			),
			'orderby'     => array(
				'description' => __( 'Sort by when the event happened or when it was stored.', 'hookpress' ),
				'type'        => 'string',
				'default'     => 'occurred_at',
				'enum'        => array_keys( Hookpress_Event_Query::ORDERBY ),
			),
			'order'       => array(
				'description' => __( 'Sort direction.', 'hookpress' ),
				'type'        => 'string',
				'default'     => 'desc',
				'enum'        => array( 'asc', 'desc' ),
			),
		);
	}

	/**
	 * Item schema.
	 *
	 * @return array
	 */
	public function get_item_schema() {
		if ( $this->schema ) {
			return $this->add_additional_fields_schema( $this->schema );
		}
		// Every field of an event is read-only: events are written by the ingest route alone.
		$field        = static function ( $description, $type = 'string' ) {
			return array(
				'description' => $description,
				'type'        => $type,
				'readonly'    => true,
			);
		};
		$this->schema = array(
			'$schema'    => 'http://json-schema.org/draft-04/schema#',
			'title'      => 'hookpress-event',
			'type'       => 'object',
			'properties' => array(
				'id'          => $field( __( 'Id of the event.', 'hookpress' ), 'integer' ),
				'source'      => $field( __( 'Source the event came from.', 'hookpress' ) ),
				'external_id' => $field( __( 'The provider\'s id of the event.', 'hookpress' ) ),
				'status'      => $field( __( 'Status reported by the provider.', 'hookpress' ) ),
				'summary'     => $field( __( 'Plain-text summary.', 'hookpress' ) ),
				'metadata'    => $field( __( 'Provider metadata.', 'hookpress' ), 'object' ),
				'occurred_at' => $field( __( 'When the event happened (RFC 3339, UTC).', 'hookpress' ) ),
				'received_at' => $field( __( 'When WordPress stored this version (RFC 3339, UTC).', 'hookpress' ) ),
				'post_id'     => $field( __( 'Its ai_event post, or null.', 'hookpress' ), array( 'integer', 'null' ) ),
			),
		);
		return $this->add_additional_fields_schema( $this->schema );
	}
}
