<?php
/**
 * What an ingest request says: its arguments, its event, its Idempotency-Key.
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * Reads and checks an ingest request; stores nothing and answers nothing.
 *
 * One owner for the field schemas (used both as the route's arguments and as
 * the body's JSON Schema), the checks JSON Schema as WordPress implements it
 * cannot express (control characters, RFC 3339 with an offset), the summary's
 * sanitising, the metadata exactly as sent, and the Idempotency-Key with the
 * canonical hash of the body it was first used with.
 */
final class Hookpress_Ingest_Request {

	/** Metadata, as stored (compact JSON). */
	const MAX_METADATA_BYTES = 65536;

	const MAX_SUMMARY_CHARS = 2000;

	/** Fields the body must contain. */
	const REQUIRED = array( 'source', 'external_id', 'status', 'occurred_at' );

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
	public static function event( $request ) {
		$body = $request->get_json_params();
		if ( ! is_array( $body ) || ( $body && self::is_list( $body ) ) ) {
			return new WP_Error( 'rest_invalid_json', __( 'The body must be a JSON object.', 'hookpress' ), array( 'status' => 400 ) );
		}
		$valid = rest_validate_value_from_schema( $body, self::body_schema(), 'body' );
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
	 * The request's Idempotency-Key, hashed for storage with the body's hash.
	 *
	 * @param WP_REST_Request $request Request.
	 * @return array{key_hash: string, request_hash: string}|null|WP_Error Null without a key.
	 */
	public static function idempotency_key( $request ) {
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
	 * @return array
	 */
	public static function endpoint_args() {
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
	public static function body_schema() {
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
}
