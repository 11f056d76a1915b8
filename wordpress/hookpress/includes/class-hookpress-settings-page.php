<?php
/**
 * The Settings > Hookpress page.
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * Renders the plugin's options (Hookpress_Settings reads and sanitises them).
 *
 * A field pinned by its constant in wp-config.php is shown disabled, with a
 * note saying so; the form then does not send it, and the option's sanitiser
 * keeps what is stored.
 */
final class Hookpress_Settings_Page {

	const PAGE = Hookpress_Settings::PAGE;

	/**
	 * Registers hooks.
	 */
	public static function add_hooks() {
		add_action( 'admin_menu', array( __CLASS__, 'add_page' ) );
		add_action( 'admin_init', array( __CLASS__, 'add_fields' ) );
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
	 * The page's sections: id => array( title, intro ).
	 *
	 * @return array
	 */
	private static function sections() {
		return array(
			'hookpress_access'  => array(
				__( 'Who may deliver events', 'hookpress' ),
				__( 'Requests to the ingest route must come from an allowed address and authenticate as a user with the Hookpress ingest role (an application password).', 'hookpress' ),
			),
			'hookpress_rate'    => array(
				__( 'Rate limit', 'hookpress' ),
				__( 'A token bucket shared by every request to the ingest route.', 'hookpress' ),
			),
			'hookpress_storage' => array(
				__( 'Storage', 'hookpress' ),
				__( 'Every event is stored once, in the plugin\'s events table.', 'hookpress' ),
			),
		);
	}

	/**
	 * The page's fields, in order: option => array( section, title, type, field arguments ).
	 *
	 * @return array
	 */
	private static function fields() {
		return array(
			Hookpress_Settings::ALLOWLIST       => array(
				'hookpress_access',
				__( 'IP allowlist', 'hookpress' ),
				'list',
				array(
					'value'       => Hookpress_Settings::allowlist(),
					'description' => __( 'One address or CIDR range per line, IPv4 or IPv6: the static egress addresses of the delivering service (its Cloud NAT IPs). An empty allowlist denies every request.', 'hookpress' ),
				),
			),
			Hookpress_Settings::TRUSTED_PROXIES => array(
				'hookpress_access',
				__( 'Trusted proxies', 'hookpress' ),
				'list',
				array(
					'value'       => Hookpress_Settings::trusted_proxies(),
					'description' => __( 'Only when the connecting address is one of these is X-Forwarded-For read, taking its rightmost address that is not a trusted proxy. Leave empty when WordPress is reached directly.', 'hookpress' ),
				),
			),
			Hookpress_Settings::RATE_PER_MINUTE => array(
				'hookpress_rate',
				__( 'Rate (requests per minute)', 'hookpress' ),
				'number',
				array(
					'value'       => Hookpress_Settings::rate_per_minute(),
					'description' => __( 'Sustained rate at which the bucket refills.', 'hookpress' ),
				),
			),
			Hookpress_Settings::BURST           => array(
				'hookpress_rate',
				__( 'Burst', 'hookpress' ),
				'number',
				array(
					'value'       => Hookpress_Settings::burst(),
					'description' => __( 'Requests allowed back to back after a quiet period. Requests over the limit get 429 with Retry-After, which the deliverer retries.', 'hookpress' ),
				),
			),
			Hookpress_Settings::CREATE_POSTS    => array(
				'hookpress_storage',
				__( 'Posts', 'hookpress' ),
				'checkbox',
				array(
					'value'       => Hookpress_Settings::create_posts(),
					'label'       => __( 'Create a post for each event', 'hookpress' ),
					'description' => __( 'Each event is also an ai_event post, readable at wp/v2/ai-events. Switch it off on a high-volume site: events are then stored in the events table only, and read in AI events and at ai-guy/v1/events.', 'hookpress' ),
				),
			),
			Hookpress_Settings::RETENTION_DAYS  => array(
				'hookpress_storage',
				__( 'Retention (days)', 'hookpress' ),
				'number',
				array(
					'value'       => Hookpress_Settings::retention_days(),
					'min'         => 0,
					'max'         => Hookpress_Settings::MAX_RETENTION_DAYS,
					'description' => __( 'Events (and their posts) not stored again for this many days are deleted by an hourly job, in batches. 0 keeps every event.', 'hookpress' ),
				),
			),
		);
	}

	/**
	 * Declares the page's sections and fields.
	 */
	public static function add_fields() {
		foreach ( self::sections() as $id => $section ) {
			add_settings_section( $id, $section[0], array( __CLASS__, 'render_section' ), self::PAGE );
		}
		foreach ( self::fields() as $option => $field ) {
			list( $section, $title, $type, $args ) = $field;
			$args['type']      = $type;
			$args['label_for'] = $option;
			$args['option']    = $option;
			$args['constant']  = Hookpress_Settings::constant_name( $option );
			add_settings_field( $option, $title, array( __CLASS__, 'render_field' ), self::PAGE, $section, $args );
		}
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
			Hookpress_Settings::trusted_proxies()
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
				settings_fields( Hookpress_Settings::GROUP );
				do_settings_sections( self::PAGE );
				submit_button();
				?>
			</form>
		</div>
		<?php
	}

	/**
	 * Intro of a section (do_settings_sections() passes the section).
	 *
	 * @param array $section Section: id, title, callback.
	 */
	public static function render_section( $section ) {
		$sections = self::sections();
		if ( isset( $sections[ $section['id'] ] ) ) {
			echo '<p>' . esc_html( $sections[ $section['id'] ][1] ) . '</p>';
		}
	}

	/**
	 * Renders one field: a checkbox, a textarea holding a list of addresses,
	 * or a number input; disabled when a constant pins it.
	 *
	 * @param array $args Field arguments (type, option, value, constant, ...).
	 */
	public static function render_field( $args ) {
		$pinned = defined( $args['constant'] );
		switch ( $args['type'] ) {
			case 'checkbox':
				printf(
					'<label><input type="checkbox" id="%1$s" name="%1$s" value="1" %2$s %3$s /> %4$s</label>',
					esc_attr( $args['option'] ),
					checked( (bool) $args['value'], true, false ),
					disabled( $pinned, true, false ),
					esc_html( $args['label'] )
				);
				break;
			case 'list':
				printf(
					'<textarea id="%1$s" name="%1$s" rows="5" cols="50" class="large-text code" %2$s>%3$s</textarea>',
					esc_attr( $args['option'] ),
					disabled( $pinned, true, false ),
					esc_textarea( implode( "\n", $args['value'] ) )
				);
				break;
			default:
				printf(
					'<input type="number" id="%1$s" name="%1$s" value="%2$d" min="%3$d" max="%4$d" step="1" class="small-text" %5$s />',
					esc_attr( $args['option'] ),
					(int) $args['value'],
					isset( $args['min'] ) ? (int) $args['min'] : 1,
					isset( $args['max'] ) ? (int) $args['max'] : (int) Hookpress_Settings::MAX_RATE,
					disabled( $pinned, true, false )
				);
		}
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
}
