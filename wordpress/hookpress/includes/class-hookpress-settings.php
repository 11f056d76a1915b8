<?php
/**
 * Options and the Settings > Hookpress page.
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * Reads the plugin's options and renders their settings page.
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
		add_action( 'admin_menu', array( __CLASS__, 'add_page' ) );
		add_action( 'admin_init', array( __CLASS__, 'add_fields' ) );
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
		return self::list_value( self::ALLOWLIST, 'HOOKPRESS_ALLOWLIST' );
	}

	/**
	 * Proxies whose X-Forwarded-For is believed.
	 *
	 * @return string[]
	 */
	public static function trusted_proxies() {
		return self::list_value( self::TRUSTED_PROXIES, 'HOOKPRESS_TRUSTED_PROXIES' );
	}

	/**
	 * Sustained ingest rate, requests per minute.
	 *
	 * @return int
	 */
	public static function rate_per_minute() {
		return self::int_value( self::RATE_PER_MINUTE, 'HOOKPRESS_RATE_PER_MINUTE', self::DEFAULT_RATE_PER_MINUTE );
	}

	/**
	 * Requests allowed at once after a quiet period (the bucket's size).
	 *
	 * @return int
	 */
	public static function burst() {
		return self::int_value( self::BURST, 'HOOKPRESS_BURST', self::DEFAULT_BURST );
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
	 * Registers the options with the Settings API.
	 */
	public static function register_settings() {
		register_setting(
			self::GROUP,
			self::ALLOWLIST,
			array(
				'type'              => 'array',
				'description'       => __( 'Addresses and CIDR ranges allowed to call the ingest route.', 'hookpress' ),
				'sanitize_callback' => array( __CLASS__, 'sanitize_allowlist' ),
				'default'           => array(),
				'show_in_rest'      => false,
			)
		);
		register_setting(
			self::GROUP,
			self::TRUSTED_PROXIES,
			array(
				'type'              => 'array',
				'description'       => __( 'Proxies whose X-Forwarded-For header is trusted.', 'hookpress' ),
				'sanitize_callback' => array( __CLASS__, 'sanitize_trusted_proxies' ),
				'default'           => array(),
				'show_in_rest'      => false,
			)
		);
		register_setting(
			self::GROUP,
			self::RATE_PER_MINUTE,
			array(
				'type'              => 'integer',
				'description'       => __( 'Sustained ingest requests per minute.', 'hookpress' ),
				'sanitize_callback' => array( __CLASS__, 'sanitize_rate' ),
				'default'           => self::DEFAULT_RATE_PER_MINUTE,
				'show_in_rest'      => false,
			)
		);
		register_setting(
			self::GROUP,
			self::BURST,
			array(
				'type'              => 'integer',
				'description'       => __( 'Ingest requests allowed at once.', 'hookpress' ),
				'sanitize_callback' => array( __CLASS__, 'sanitize_burst' ),
				'default'           => self::DEFAULT_BURST,
				'show_in_rest'      => false,
			)
		);
		register_setting(
			self::GROUP,
			self::CREATE_POSTS,
			array(
				'type'              => 'boolean',
				'description'       => __( 'Whether each event also gets an ai_event post.', 'hookpress' ),
				'sanitize_callback' => array( __CLASS__, 'sanitize_create_posts' ),
				'default'           => true,
				'show_in_rest'      => false,
			)
		);
		register_setting(
			self::GROUP,
			self::RETENTION_DAYS,
			array(
				'type'              => 'integer',
				'description'       => __( 'Days an event is kept; 0 keeps events forever.', 'hookpress' ),
				'sanitize_callback' => array( __CLASS__, 'sanitize_retention_days' ),
				'default'           => 0,
				'show_in_rest'      => false,
			)
		);
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
		if ( is_int( $value ) || ( is_string( $value ) && preg_match( '/\A\s*\d+\s*\z/', $value ) ) ) {
			$days = (int) $value;
			if ( $days <= self::MAX_RETENTION_DAYS ) {
				return $days;
			}
		}
		if ( function_exists( 'add_settings_error' ) ) {
			add_settings_error(
				self::RETENTION_DAYS,
				self::RETENTION_DAYS . '_invalid',
				/* translators: %d: maximum */
				sprintf( __( 'Retention must be a whole number of days from 0 (keep forever) to %d; the previous value was kept.', 'hookpress' ), self::MAX_RETENTION_DAYS )
			);
		}
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
	 * Adds Settings > Hookpress.
	 */
	public static function add_page() {
		add_options_page(
			__( 'Hookpress', 'hookpress' ),
			__( 'Hookpress', 'hookpress' ),
			'manage_options',
			self::PAGE,
			array( __CLASS__, 'render_page' )
		);
	}

	/**
	 * Declares the page's sections and fields.
	 */
	public static function add_fields() {
		add_settings_section(
			'hookpress_access',
			__( 'Who may deliver events', 'hookpress' ),
			array( __CLASS__, 'render_access_section' ),
			self::PAGE
		);
		add_settings_field(
			self::ALLOWLIST,
			__( 'IP allowlist', 'hookpress' ),
			array( __CLASS__, 'render_list_field' ),
			self::PAGE,
			'hookpress_access',
			array(
				'label_for'   => self::ALLOWLIST,
				'option'      => self::ALLOWLIST,
				'constant'    => 'HOOKPRESS_ALLOWLIST',
				'description' => __( 'One address or CIDR range per line, IPv4 or IPv6: the static egress addresses of the delivering service (its Cloud NAT IPs). An empty allowlist denies every request.', 'hookpress' ),
			)
		);
		add_settings_field(
			self::TRUSTED_PROXIES,
			__( 'Trusted proxies', 'hookpress' ),
			array( __CLASS__, 'render_list_field' ),
			self::PAGE,
			'hookpress_access',
			array(
				'label_for'   => self::TRUSTED_PROXIES,
				'option'      => self::TRUSTED_PROXIES,
				'constant'    => 'HOOKPRESS_TRUSTED_PROXIES',
				'description' => __( 'Only when the connecting address is one of these is X-Forwarded-For read, taking its rightmost address that is not a trusted proxy. Leave empty when WordPress is reached directly.', 'hookpress' ),
			)
		);
		add_settings_section(
			'hookpress_rate',
			__( 'Rate limit', 'hookpress' ),
			array( __CLASS__, 'render_rate_section' ),
			self::PAGE
		);
		add_settings_field(
			self::RATE_PER_MINUTE,
			__( 'Rate (requests per minute)', 'hookpress' ),
			array( __CLASS__, 'render_number_field' ),
			self::PAGE,
			'hookpress_rate',
			array(
				'label_for'   => self::RATE_PER_MINUTE,
				'option'      => self::RATE_PER_MINUTE,
				'constant'    => 'HOOKPRESS_RATE_PER_MINUTE',
				'value'       => self::rate_per_minute(),
				'description' => __( 'Sustained rate at which the bucket refills.', 'hookpress' ),
			)
		);
		add_settings_field(
			self::BURST,
			__( 'Burst', 'hookpress' ),
			array( __CLASS__, 'render_number_field' ),
			self::PAGE,
			'hookpress_rate',
			array(
				'label_for'   => self::BURST,
				'option'      => self::BURST,
				'constant'    => 'HOOKPRESS_BURST',
				'value'       => self::burst(),
				'description' => __( 'Requests allowed back to back after a quiet period. Requests over the limit get 429 with Retry-After, which the deliverer retries.', 'hookpress' ),
			)
		);
		add_settings_section(
			'hookpress_storage',
			__( 'Storage', 'hookpress' ),
			array( __CLASS__, 'render_storage_section' ),
			self::PAGE
		);
		add_settings_field(
			self::CREATE_POSTS,
			__( 'Posts', 'hookpress' ),
			array( __CLASS__, 'render_checkbox_field' ),
			self::PAGE,
			'hookpress_storage',
			array(
				'label_for'   => self::CREATE_POSTS,
				'option'      => self::CREATE_POSTS,
				'constant'    => 'HOOKPRESS_CREATE_POSTS',
				'value'       => self::create_posts(),
				'label'       => __( 'Create a post for each event', 'hookpress' ),
				'description' => __( 'Each event is also an ai_event post, readable at wp/v2/ai-events. Switch it off on a high-volume site: events are then stored in the events table only, and read in AI events and at ai-guy/v1/events.', 'hookpress' ),
			)
		);
		add_settings_field(
			self::RETENTION_DAYS,
			__( 'Retention (days)', 'hookpress' ),
			array( __CLASS__, 'render_number_field' ),
			self::PAGE,
			'hookpress_storage',
			array(
				'label_for'   => self::RETENTION_DAYS,
				'option'      => self::RETENTION_DAYS,
				'constant'    => 'HOOKPRESS_RETENTION_DAYS',
				'value'       => self::retention_days(),
				'min'         => 0,
				'max'         => self::MAX_RETENTION_DAYS,
				'description' => __( 'Events (and their posts) not stored again for this many days are deleted by an hourly job, in batches. 0 keeps every event.', 'hookpress' ),
			)
		);
	}

	/**
	 * Renders the page.
	 */
	public static function render_page() {
		if ( ! current_user_can( 'manage_options' ) ) {
			return;
		}
		$client = Hookpress_Ip::client_address(
			isset( $_SERVER['REMOTE_ADDR'] ) ? sanitize_text_field( wp_unslash( $_SERVER['REMOTE_ADDR'] ) ) : '',
			isset( $_SERVER['HTTP_X_FORWARDED_FOR'] ) ? sanitize_text_field( wp_unslash( $_SERVER['HTTP_X_FORWARDED_FOR'] ) ) : null,
			self::trusted_proxies()
		);
		?>
		<div class="wrap">
			<h1><?php echo esc_html( get_admin_page_title() ); ?></h1>
			<p>
				<?php esc_html_e( 'Endpoint:', 'hookpress' ); ?>
				<code><?php echo esc_html( rest_url( Hookpress_Ingest_Controller::ROUTE_NAMESPACE . Hookpress_Ingest_Controller::ROUTE ) ); ?></code>
			</p>
			<p>
				<?php esc_html_e( 'Your browser reaches this site from:', 'hookpress' ); ?>
				<code><?php echo esc_html( null === $client ? __( 'unknown', 'hookpress' ) : Hookpress_Ip::to_text( $client ) ); ?></code>
			</p>
			<form action="options.php" method="post">
				<?php
				settings_fields( self::GROUP );
				do_settings_sections( self::PAGE );
				submit_button();
				?>
			</form>
		</div>
		<?php
	}

	/**
	 * Intro of the access section.
	 */
	public static function render_access_section() {
		echo '<p>' . esc_html__( 'Requests to the ingest route must come from an allowed address and authenticate as a user with the Hookpress ingest role (an application password).', 'hookpress' ) . '</p>';
	}

	/**
	 * Intro of the storage section.
	 */
	public static function render_storage_section() {
		echo '<p>' . esc_html__( 'Every event is stored once, in the plugin\'s events table.', 'hookpress' ) . '</p>';
	}

	/**
	 * Renders a checkbox.
	 *
	 * @param array $args Field arguments.
	 */
	public static function render_checkbox_field( $args ) {
		$pinned = defined( $args['constant'] );
		printf(
			'<label><input type="checkbox" id="%1$s" name="%1$s" value="1" %2$s %3$s /> %4$s</label>',
			esc_attr( $args['option'] ),
			checked( (bool) $args['value'], true, false ),
			disabled( $pinned, true, false ),
			esc_html( $args['label'] )
		);
		self::render_description( $args, $pinned );
	}

	/**
	 * Intro of the rate section.
	 */
	public static function render_rate_section() {
		echo '<p>' . esc_html__( 'A token bucket shared by every request to the ingest route.', 'hookpress' ) . '</p>';
	}

	/**
	 * Renders a textarea holding a list of addresses.
	 *
	 * @param array $args Field arguments.
	 */
	public static function render_list_field( $args ) {
		$pinned = defined( $args['constant'] );
		$values = self::ALLOWLIST === $args['option'] ? self::allowlist() : self::trusted_proxies();
		printf(
			'<textarea id="%1$s" name="%1$s" rows="5" cols="50" class="large-text code" %2$s>%3$s</textarea>',
			esc_attr( $args['option'] ),
			disabled( $pinned, true, false ),
			esc_textarea( implode( "\n", $values ) )
		);
		self::render_description( $args, $pinned );
	}

	/**
	 * Renders a number input.
	 *
	 * @param array $args Field arguments.
	 */
	public static function render_number_field( $args ) {
		$pinned = defined( $args['constant'] );
		printf(
			'<input type="number" id="%1$s" name="%1$s" value="%2$d" min="%3$d" max="%4$d" step="1" class="small-text" %5$s />',
			esc_attr( $args['option'] ),
			(int) $args['value'],
			isset( $args['min'] ) ? (int) $args['min'] : 1,
			isset( $args['max'] ) ? (int) $args['max'] : (int) self::MAX_RATE,
			disabled( $pinned, true, false )
		);
		self::render_description( $args, $pinned );
	}

	/**
	 * Renders a field's help text.
	 *
	 * @param array $args   Field arguments.
	 * @param bool  $pinned Whether a constant sets the value.
	 */
	private static function render_description( $args, $pinned ) {
		echo '<p class="description">' . esc_html( $args['description'] ) . '</p>';
		if ( $pinned ) {
			/* translators: %s: constant name */
			echo '<p class="description"><strong>' . esc_html( sprintf( __( 'Set by %s in wp-config.php.', 'hookpress' ), $args['constant'] ) ) . '</strong></p>';
		}
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
		if ( $bad && function_exists( 'add_settings_error' ) ) {
			add_settings_error(
				$option,
				$option . '_invalid',
				/* translators: 1: field label, 2: rejected entries */
				sprintf( __( '%1$s: ignored entries that are not addresses or CIDR ranges: %2$s', 'hookpress' ), $label, implode( ', ', array_map( 'sanitize_text_field', $bad ) ) )
			);
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
		if ( null === $value ) {
			return $stored > 0 ? $stored : $fallback;
		}
		if ( is_int( $value ) || ( is_string( $value ) && preg_match( '/\A\s*\d+\s*\z/', $value ) ) ) {
			$number = (int) $value;
			if ( $number >= 1 && $number <= self::MAX_RATE ) {
				return $number;
			}
		}
		if ( function_exists( 'add_settings_error' ) ) {
			add_settings_error(
				$option,
				$option . '_invalid',
				/* translators: 1: field label, 2: maximum */
				sprintf( __( '%1$s must be a whole number from 1 to %2$d; the previous value was kept.', 'hookpress' ), $label, self::MAX_RATE )
			);
		}
		return $stored > 0 ? $stored : $fallback;
	}

	/**
	 * Reads a list option, or the constant that pins it.
	 *
	 * @param string $option   Option name.
	 * @param string $constant Constant name.
	 * @return string[]
	 */
	private static function list_value( $option, $constant ) {
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
	 * @param string $constant Constant name.
	 * @param int    $fallback Default.
	 * @return int
	 */
	private static function int_value( $option, $constant, $fallback ) {
		$value = defined( $constant ) ? (int) constant( $constant ) : (int) get_option( $option, $fallback );
		return $value >= 1 ? min( $value, self::MAX_RATE ) : $fallback;
	}
}
