<?php
/**
 * The plugin's options: read, registered, sanitised.
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * Reads the plugin's options and sanitises what is stored in them
 * (Hookpress_Settings_Page renders them).
 *
 * Each option can be pinned in wp-config.php with a constant of the same name
 * in upper case (HOOKPRESS_ALLOWLIST, HOOKPRESS_TRUSTED_PROXIES,
 * HOOKPRESS_RATE_PER_MINUTE, HOOKPRESS_BURST, HOOKPRESS_CREATE_POSTS,
 * HOOKPRESS_RETENTION_DAYS). A pinned value wins over the
 * stored option and is shown read-only on the page, so infrastructure code can
 * own it without an administrator undoing it by accident.
 */
final class Hookpress_Settings {

	const PAGE  = 'hookpress';
	const GROUP = 'hookpress';

	const ALLOWLIST       = 'hookpress_allowlist';
	const TRUSTED_PROXIES = 'hookpress_trusted_proxies';
	const RATE_PER_MINUTE = 'hookpress_rate_per_minute';
	const BURST           = 'hookpress_burst';

	const CREATE_POSTS   = 'hookpress_create_posts';
	const RETENTION_DAYS = 'hookpress_retention_days';

	/** Longest retention the page accepts (ten years); 0 keeps events forever. */
	const MAX_RETENTION_DAYS = 3650;

	const DEFAULT_RATE_PER_MINUTE = 300;
	const DEFAULT_BURST           = 60;
	const MAX_RATE                = 1000000;

	/**
	 * Registers hooks.
	 */
	public static function add_hooks() {
		// On init rather than admin_init: the sanitizers must also run when
		// update_option() is called from WP-CLI or a deployment script.
		add_action( 'init', array( __CLASS__, 'register_settings' ) );
		Hookpress_Settings_Page::add_hooks();
		// New limits start from a full bucket, so lowering them takes effect at once
		// and raising them does not wait for the old bucket to refill.
		foreach ( array( self::RATE_PER_MINUTE, self::BURST ) as $option ) {
			add_action( "add_option_{$option}", array( 'Hookpress_Rate_Limiter', 'reset' ) );
			add_action( "update_option_{$option}", array( 'Hookpress_Rate_Limiter', 'reset' ) );
		}
	}

	/**
	 * Addresses and ranges allowed to call the ingest route. Empty denies everyone.
	 *
	 * @return string[]
	 */
	public static function allowlist() {
		return self::list_value( self::ALLOWLIST );
	}

	/**
	 * Proxies whose X-Forwarded-For is believed.
	 *
	 * @return string[]
	 */
	public static function trusted_proxies() {
		return self::list_value( self::TRUSTED_PROXIES );
	}

	/**
	 * Sustained ingest rate, requests per minute.
	 *
	 * @return int
	 */
	public static function rate_per_minute() {
		return self::int_value( self::RATE_PER_MINUTE, self::DEFAULT_RATE_PER_MINUTE );
	}

	/**
	 * Requests allowed at once after a quiet period (the bucket's size).
	 *
	 * @return int
	 */
	public static function burst() {
		return self::int_value( self::BURST, self::DEFAULT_BURST );
	}

	/**
	 * Whether each event also gets an ai_event post (on unless switched off).
	 *
	 * @return bool
	 */
	public static function create_posts() {
		if ( defined( 'HOOKPRESS_CREATE_POSTS' ) ) {
			return (bool) HOOKPRESS_CREATE_POSTS;
		}
		return (bool) get_option( self::CREATE_POSTS, 1 );
	}

	/**
	 * Days an event is kept after it was last stored; 0 keeps events forever.
	 *
	 * @return int
	 */
	public static function retention_days() {
		$days = defined( 'HOOKPRESS_RETENTION_DAYS' ) ? (int) HOOKPRESS_RETENTION_DAYS : (int) get_option( self::RETENTION_DAYS, 0 );
		return max( 0, min( $days, self::MAX_RETENTION_DAYS ) );
	}

	/**
	 * The constant that pins an option: its name in upper case.
	 *
	 * @param string $option Option name.
	 * @return string
	 */
	public static function constant_name( $option ) {
		return strtoupper( $option );
	}

	/**
	 * The options: name => array( type, description, sanitizer, default ).
	 *
	 * @return array
	 */
	private static function options() {
		return array(
			self::ALLOWLIST       => array( 'array', __( 'Addresses and CIDR ranges allowed to call the ingest route.', 'hookpress' ), 'sanitize_allowlist', array() ),
			self::TRUSTED_PROXIES => array( 'array', __( 'Proxies whose X-Forwarded-For header is trusted.', 'hookpress' ), 'sanitize_trusted_proxies', array() ),
			self::RATE_PER_MINUTE => array( 'integer', __( 'Sustained ingest requests per minute.', 'hookpress' ), 'sanitize_rate', self::DEFAULT_RATE_PER_MINUTE ),
			self::BURST           => array( 'integer', __( 'Ingest requests allowed at once.', 'hookpress' ), 'sanitize_burst', self::DEFAULT_BURST ),
			self::CREATE_POSTS    => array( 'boolean', __( 'Whether each event also gets an ai_event post.', 'hookpress' ), 'sanitize_create_posts', true ),
			self::RETENTION_DAYS  => array( 'integer', __( 'Days an event is kept; 0 keeps events forever.', 'hookpress' ), 'sanitize_retention_days', 0 ),
		);
	}

	/**
	 * The names of the plugin's options (uninstall.php deletes each).
	 *
	 * @return string[]
	 */
	public static function option_names() {
		return array_keys( self::options() );
	}

	/**
	 * Registers the options with the Settings API.
	 */
	public static function register_settings() {
		foreach ( self::options() as $option => $spec ) {
			list( $type, $description, $sanitizer, $default ) = $spec;
			register_setting(
				self::GROUP,
				$option,
				array(
					'type'              => $type,
					'description'       => $description,
					'sanitize_callback' => array( __CLASS__, $sanitizer ),
					'default'           => $default,
					'show_in_rest'      => false,
				)
			);
		}
	}

	/**
	 * Sanitizes "Create a post for each event" (an unchecked box sends nothing).
	 *
	 * @param mixed $value Submitted value.
	 * @return int 1 or 0.
	 */
	public static function sanitize_create_posts( $value ) {
		if ( null === $value && defined( 'HOOKPRESS_CREATE_POSTS' ) ) {
			// The disabled (pinned) box was not sent: keep what is stored.
			return (int) get_option( self::CREATE_POSTS, 1 );
		}
		return in_array( $value, array( true, 1, '1', 'on', 'yes', 'true' ), true ) ? 1 : 0;
	}

	/**
	 * Sanitizes the retention: whole days from 0 (forever) to MAX_RETENTION_DAYS.
	 *
	 * @param mixed $value Submitted value.
	 * @return int
	 */
	public static function sanitize_retention_days( $value ) {
		$stored = (int) get_option( self::RETENTION_DAYS, 0 );
		if ( null === $value ) {
			return $stored;
		}
		$days = self::whole_number( $value );
		if ( null !== $days && $days <= self::MAX_RETENTION_DAYS ) {
			return $days;
		}
		/* translators: %d: maximum */
		self::report( self::RETENTION_DAYS, sprintf( __( 'Retention must be a whole number of days from 0 (keep forever) to %d; the previous value was kept.', 'hookpress' ), self::MAX_RETENTION_DAYS ) );
		return $stored;
	}

	/**
	 * Sanitizes the allowlist.
	 *
	 * @param mixed $value Textarea text or an array.
	 * @return string[]
	 */
	public static function sanitize_allowlist( $value ) {
		return self::sanitize_list( $value, self::ALLOWLIST, __( 'IP allowlist', 'hookpress' ) );
	}

	/**
	 * Sanitizes the trusted proxies.
	 *
	 * @param mixed $value Textarea text or an array.
	 * @return string[]
	 */
	public static function sanitize_trusted_proxies( $value ) {
		return self::sanitize_list( $value, self::TRUSTED_PROXIES, __( 'Trusted proxies', 'hookpress' ) );
	}

	/**
	 * Sanitizes the rate.
	 *
	 * @param mixed $value Submitted value.
	 * @return int
	 */
	public static function sanitize_rate( $value ) {
		return self::sanitize_positive_int( $value, self::RATE_PER_MINUTE, self::DEFAULT_RATE_PER_MINUTE, __( 'Rate', 'hookpress' ) );
	}

	/**
	 * Sanitizes the burst.
	 *
	 * @param mixed $value Submitted value.
	 * @return int
	 */
	public static function sanitize_burst( $value ) {
		return self::sanitize_positive_int( $value, self::BURST, self::DEFAULT_BURST, __( 'Burst', 'hookpress' ) );
	}

	/**
	 * Sanitizes a list of addresses or ranges, dropping and reporting invalid ones.
	 *
	 * @param mixed  $value  Newline/comma separated text or an array.
	 * @param string $option Option name.
	 * @param string $label  Field label for error messages.
	 * @return string[]
	 */
	private static function sanitize_list( $value, $option, $label ) {
		if ( null === $value ) {
			// options.php submits null for a field the form did not send
			// (disabled because a constant pins it): keep what is stored.
			$stored = get_option( $option, array() );
			return is_array( $stored ) ? array_values( $stored ) : array();
		}
		$items = is_array( $value ) ? $value : preg_split( '/[\s,]+/', (string) $value );
		$clean = array();
		$bad   = array();
		foreach ( $items as $item ) {
			$item = trim( (string) $item );
			if ( '' === $item ) {
				continue;
			}
			$normalized = Hookpress_Ip::normalize_range( $item );
			if ( null === $normalized ) {
				$bad[] = $item;
				continue;
			}
			$clean[ $normalized ] = true;
		}
		if ( $bad ) {
			/* translators: 1: field label, 2: rejected entries */
			self::report( $option, sprintf( __( '%1$s: ignored entries that are not addresses or CIDR ranges: %2$s', 'hookpress' ), $label, implode( ', ', array_map( 'sanitize_text_field', $bad ) ) ) );
		}
		return array_keys( $clean );
	}

	/**
	 * Sanitizes a positive integer, keeping the stored value on bad input.
	 *
	 * @param mixed  $value    Submitted value.
	 * @param string $option   Option name.
	 * @param int    $fallback Default when nothing is stored.
	 * @param string $label    Field label for error messages.
	 * @return int
	 */
	private static function sanitize_positive_int( $value, $option, $fallback, $label ) {
		$stored = (int) get_option( $option, $fallback );
		$number = null === $value ? null : self::whole_number( $value );
		if ( null !== $number && $number >= 1 && $number <= self::MAX_RATE ) {
			return $number;
		}
		if ( null !== $value ) {
			/* translators: 1: field label, 2: maximum */
			self::report( $option, sprintf( __( '%1$s must be a whole number from 1 to %2$d; the previous value was kept.', 'hookpress' ), $label, self::MAX_RATE ) );
		}
		return $stored > 0 ? $stored : $fallback;
	}

	/**
	 * A submitted whole number (an int, or digits with surrounding space), or null.
	 *
	 * @param mixed $value Submitted value.
	 * @return int|null
	 */
	private static function whole_number( $value ) {
		if ( is_int( $value ) || ( is_string( $value ) && preg_match( '/\A\s*\d+\s*\z/', $value ) ) ) {
			return (int) $value;
		}
		return null;
	}

	/**
	 * Tells the administrator why a submitted value was not stored (on the
	 * settings page; elsewhere, e.g. WP-CLI, there is no such screen).
	 *
	 * @param string $option  Option name.
	 * @param string $message Message.
	 */
	private static function report( $option, $message ) {
		if ( function_exists( 'add_settings_error' ) ) {
			add_settings_error( $option, $option . '_invalid', $message );
		}
	}

	/**
	 * Reads a list option, or the constant that pins it.
	 *
	 * @param string $option Option name.
	 * @return string[]
	 */
	private static function list_value( $option ) {
		$constant = self::constant_name( $option );
		if ( defined( $constant ) ) {
			$value = constant( $constant );
			$items = is_array( $value ) ? $value : preg_split( '/[\s,]+/', (string) $value );
			return array_values( array_filter( array_map( 'trim', array_map( 'strval', $items ) ), 'strlen' ) );
		}
		$value = get_option( $option, array() );
		return is_array( $value ) ? array_values( array_map( 'strval', $value ) ) : array();
	}

	/**
	 * Reads an integer option, or the constant that pins it.
	 *
	 * @param string $option   Option name.
	 * @param int    $fallback Default.
	 * @return int
	 */
	private static function int_value( $option, $fallback ) {
		$constant = self::constant_name( $option );
		$value = defined( $constant ) ? (int) constant( $constant ) : (int) get_option( $option, $fallback );
		return $value >= 1 ? min( $value, self::MAX_RATE ) : $fallback;
	}
}
