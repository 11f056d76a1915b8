<?php
/**
 * wp/v2/ai-events: read-only, for users who can edit events.
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * The core posts controller with writes refused and reads gated.
 *
 * The core controller lets anyone read published posts of any post type shown
 * in REST, whatever its "public" flag says. Events carry provider data, so
 * reading needs the post type's edit_posts capability (edit_ai_events), which
 * only administrators get. Writes (including autosaves, which ask this
 * controller) are refused for everyone: the ingest route is the only writer,
 * because it alone applies the idempotency and ordering rules.
 */
final class Hookpress_Events_Controller extends WP_REST_Posts_Controller {

	/**
	 * Checks whether the current user may list events.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return true|WP_Error
	 */
	public function get_items_permissions_check( $request ) {
		if ( ! $this->can_read_events() ) {
			return $this->read_forbidden();
		}
		return parent::get_items_permissions_check( $request );
	}

	/**
	 * Checks whether the current user may read one event.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return true|WP_Error
	 */
	public function get_item_permissions_check( $request ) {
		if ( ! $this->can_read_events() ) {
			return $this->read_forbidden();
		}
		return parent::get_item_permissions_check( $request );
	}

	/**
	 * Per-post read check, also used to filter collections and embeds.
	 *
	 * Whoever may read events may read each of them, whatever its status (the
	 * status parameter itself is checked by the parent). The parent's check
	 * would fall back to edit_post for a trashed event, which nobody has.
	 *
	 * @param WP_Post $post Post.
	 * @return bool
	 */
	public function check_read_permission( $post ) {
		return $this->can_read_events() && $post instanceof WP_Post && $this->post_type === $post->post_type;
	}

	/**
	 * Refuses creation.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return WP_Error
	 */
	public function create_item_permissions_check( $request ) {
		return $this->write_forbidden( 'rest_cannot_create' );
	}

	/**
	 * Refuses updates (and autosaves, which defer to this check).
	 *
	 * @param WP_REST_Request $request Request.
	 * @return WP_Error
	 */
	public function update_item_permissions_check( $request ) {
		return $this->write_forbidden( 'rest_cannot_edit' );
	}

	/**
	 * Refuses deletion.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return WP_Error
	 */
	public function delete_item_permissions_check( $request ) {
		return $this->write_forbidden( 'rest_cannot_delete' );
	}

	/**
	 * Whether the current user holds the post type's edit_posts capability.
	 *
	 * @return bool
	 */
	private function can_read_events() {
		$object = get_post_type_object( $this->post_type );
		return $object && current_user_can( $object->cap->edit_posts );
	}

	/**
	 * The error for a read without the capability.
	 *
	 * @return WP_Error
	 */
	private function read_forbidden() {
		return new WP_Error(
			'rest_forbidden',
			__( 'Sorry, you are not allowed to read AI events.', 'hookpress' ),
			array( 'status' => rest_authorization_required_code() )
		);
	}

	/**
	 * The error for any write.
	 *
	 * @param string $code Error code matching core's for the operation.
	 * @return WP_Error
	 */
	private function write_forbidden( $code ) {
		return new WP_Error(
			$code,
			__( 'AI events are read-only here; they are written only through ai-guy/v1/ingest.', 'hookpress' ),
			array( 'status' => rest_authorization_required_code() )
		);
	}
}
