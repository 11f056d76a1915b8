<?php
/**
 * Addresses and CIDR ranges: who is calling, and is that caller allowed.
 *
 * @package Hookpress
 */

defined( 'ABSPATH' ) || exit;

/**
 * IPv4/IPv6 parsing, CIDR matching and client address resolution.
 *
 * Addresses are compared in packed binary form (inet_pton), never as text, so
 * "::1" and "0:0:0:0:0:0:0:1" are the same address and "10.0.0.1" does not
 * match a "10.0.0.10" entry. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are
 * folded to IPv4, because a dual-stack socket reports IPv4 peers that way.
 */
final class Hookpress_Ip {

	/**
	 * Parses one address into packed form, or null when it is not an address.
	 *
	 * Accepts the shapes found in REMOTE_ADDR and X-Forwarded-For: a bare
	 * address, an IPv6 zone suffix ("fe80::1%eth0"), a bracketed IPv6 address
	 * with or without a port ("[2001:db8::1]:443") and IPv4 with a port.
	 *
	 * @param string $address Address text.
	 * @return string|null Packed address (4 or 16 bytes).
	 */
	public static function pack( $address ) {
		if ( ! is_string( $address ) ) {
			return null;
		}
		$address = trim( $address );
		if ( '' === $address || strlen( $address ) > 64 ) {
			return null;
		}
		if ( '[' === $address[0] ) {
			$end = strpos( $address, ']' );
			if ( false === $end ) {
				return null;
			}
			$rest    = substr( $address, $end + 1 );
			$address = substr( $address, 1, $end - 1 );
			if ( '' !== $rest && ! preg_match( '/\A:\d{1,5}\z/', $rest ) ) {
				return null;
			}
		} elseif ( 1 === substr_count( $address, ':' ) && preg_match( '/\A([0-9.]+):\d{1,5}\z/', $address, $m ) ) {
			$address = $m[1];
		}
		$zone = strpos( $address, '%' );
		if ( false !== $zone ) {
			$address = substr( $address, 0, $zone );
		}
		$packed = @inet_pton( $address ); // phpcs:ignore WordPress.PHP.NoSilencedErrors -- invalid input is an expected outcome, not a warning.
		if ( false === $packed ) {
			return null;
		}
		return self::fold_mapped( $packed );
	}

	/**
	 * Parses an allowlist entry: an address or a CIDR range.
	 *
	 * @param string $entry For example "203.0.113.7", "10.0.0.0/8", "2001:db8::/32".
	 * @return array{0: string, 1: int}|null Packed network and prefix length.
	 */
	public static function parse_range( $entry ) {
		if ( ! is_string( $entry ) ) {
			return null;
		}
		$entry  = trim( $entry );
		$prefix = null;
		$slash  = strpos( $entry, '/' );
		if ( false !== $slash ) {
			$bits = substr( $entry, $slash + 1 );
			if ( ! preg_match( '/\A\d{1,3}\z/', $bits ) ) {
				return null;
			}
			$prefix = (int) $bits;
			$entry  = substr( $entry, 0, $slash );
		}
		if ( false !== strpos( $entry, '[' ) || false !== strpos( $entry, '%' ) ) {
			return null;
		}
		$raw = @inet_pton( $entry ); // phpcs:ignore WordPress.PHP.NoSilencedErrors -- invalid input is an expected outcome.
		if ( false === $raw ) {
			return null;
		}
		$max = strlen( $raw ) * 8;
		if ( null === $prefix ) {
			$prefix = $max;
		}
		if ( $prefix > $max ) {
			return null;
		}
		$packed = self::fold_mapped( $raw );
		if ( 4 === strlen( $packed ) && 16 === strlen( $raw ) ) {
			// ::ffff:0:0/96 and narrower describe IPv4 space; anything wider
			// than /96 would also cover non-mapped IPv6, which folding cannot express.
			if ( $prefix < 96 ) {
				return null;
			}
			$prefix -= 96;
		}
		return array( self::mask( $packed, $prefix ), $prefix );
	}

	/**
	 * Canonical text of a valid entry ("10.0.0.0/8", "::1"), or null.
	 *
	 * @param string $entry Entry as typed by an administrator.
	 * @return string|null
	 */
	public static function normalize_range( $entry ) {
		$range = self::parse_range( $entry );
		if ( null === $range ) {
			return null;
		}
		list( $network, $prefix ) = $range;
		$text                     = inet_ntop( $network );
		return strlen( $network ) * 8 === $prefix ? $text : $text . '/' . $prefix;
	}

	/**
	 * Whether a packed address falls into any of the ranges.
	 *
	 * @param string   $packed  Packed address from pack().
	 * @param string[] $entries Allowlist entries; invalid ones never match.
	 * @return bool
	 */
	public static function in_ranges( $packed, array $entries ) {
		foreach ( $entries as $entry ) {
			$range = self::parse_range( $entry );
			if ( null === $range ) {
				continue;
			}
			list( $network, $prefix ) = $range;
			if ( strlen( $network ) === strlen( $packed ) && self::mask( $packed, $prefix ) === $network ) {
				return true;
			}
		}
		return false;
	}

	/**
	 * The address of the client a request comes from, or null if it cannot be trusted.
	 *
	 * The peer (REMOTE_ADDR) is the client unless the peer is one of the
	 * configured trusted proxies. Only then is X-Forwarded-For read, from the
	 * right: each proxy appends the address it received the request from, so the
	 * rightmost hop that is not itself a trusted proxy is the first address no
	 * trusted party vouches for. Everything left of it could be typed by the
	 * client, which is why the leftmost hop is never taken on trust.
	 *
	 * @param string      $remote_addr     $_SERVER['REMOTE_ADDR'].
	 * @param string|null $forwarded_for   The X-Forwarded-For header, if any.
	 * @param string[]    $trusted_proxies Trusted proxy entries.
	 * @return string|null Packed client address; null when unparseable (deny).
	 */
	public static function client_address( $remote_addr, $forwarded_for, array $trusted_proxies ) {
		$peer = self::pack( (string) $remote_addr );
		if ( null === $peer ) {
			return null;
		}
		if ( empty( $trusted_proxies ) || ! self::in_ranges( $peer, $trusted_proxies ) ) {
			return $peer;
		}
		if ( null === $forwarded_for || '' === trim( $forwarded_for ) ) {
			return $peer;
		}
		$hops = array_reverse( explode( ',', $forwarded_for ) );
		$hop  = null;
		foreach ( $hops as $text ) {
			$hop = self::pack( $text );
			if ( null === $hop ) {
				// A malformed hop means the chain cannot be read: fail closed.
				return null;
			}
			if ( ! self::in_ranges( $hop, $trusted_proxies ) ) {
				return $hop;
			}
		}
		// Every hop is a trusted proxy: the leftmost is the origin.
		return $hop;
	}

	/**
	 * Text form of a packed address.
	 *
	 * @param string|null $packed Packed address.
	 * @return string
	 */
	public static function to_text( $packed ) {
		if ( null === $packed ) {
			return '';
		}
		$text = inet_ntop( $packed );
		return false === $text ? '' : $text;
	}

	/**
	 * Folds ::ffff:a.b.c.d into the 4-byte IPv4 form.
	 *
	 * @param string $packed Packed address.
	 * @return string
	 */
	private static function fold_mapped( $packed ) {
		if ( 16 === strlen( $packed ) && 0 === strncmp( $packed, str_repeat( "\0", 10 ) . "\xff\xff", 12 ) ) {
			return substr( $packed, 12 );
		}
		return $packed;
	}

	/**
	 * Zeroes the host bits beyond a prefix length.
	 *
	 * @param string $packed Packed address.
	 * @param int    $prefix Prefix length in bits.
	 * @return string
	 */
	private static function mask( $packed, $prefix ) {
		$length = strlen( $packed );
		$out    = '';
		for ( $i = 0; $i < $length; $i++ ) {
			$bits = max( 0, min( 8, $prefix - 8 * $i ) );
			$out .= chr( ord( $packed[ $i ] ) & ( ( 0xff << ( 8 - $bits ) ) & 0xff ) );
		}
		return $out;
	}
}
