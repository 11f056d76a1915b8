<?php
/**
 * A read/write-splitting wpdb drop-in, for tests only (copied to wp-content/db.php).
 *
 * It routes as the splitters sites put in front of WordPress do (HyperDB,
 * LudicrousDB, ProxySQL, MaxScale): a statement that only reads (SELECT,
 * SHOW, DESCRIBE, EXPLAIN; a SELECT ... FOR UPDATE or LOCK IN SHARE MODE
 * excepted) goes to a replica unless it runs inside an explicit transaction,
 * whose statements stay on the primary. The lock functions are read-only
 * SELECTs to such a router, so GET_LOCK and friends go to the replica too.
 *
 * The replica is the database "wordpress_replica": a copy taken once by the
 * test and never updated, the worst replication lag there is. Anything that
 * decides by reading outside a transaction reads a stale world here.
 *
 * Only web requests are split: php-cli (the tests' own look at the database)
 * reads the primary.
 *
 * Every routing decision is appended to wp-content/hookpress-splitter.log as
 * "primary|replica<TAB>statement" (one line each, newlines folded).
 *
 * @package Hookpress
 */

// phpcs:disable -- test scaffolding, not plugin code.

class Hookpress_Test_Splitting_Wpdb extends wpdb {

	/** @var mysqli|null */
	private $replica_dbh = null;

	/** @var bool */
	private $in_transaction = false;

	public function query( $query ) {
		$text = ltrim( (string) $query, " \t\r\n(" );
		if ( preg_match( '/^(START\s+TRANSACTION|BEGIN)\b/i', $text ) ) {
			$this->in_transaction = true;
		}
		$read   = preg_match( '/^(SELECT|SHOW|DESCRIBE|DESC|EXPLAIN)\s/i', $text )
			&& ! preg_match( '/\b(FOR\s+UPDATE|LOCK\s+IN\s+SHARE\s+MODE)\s*$/i', rtrim( $text ) );
		$target = $read && ! $this->in_transaction ? 'replica' : 'primary';
		self::log( $target, $text );
		if ( preg_match( '/^(COMMIT|ROLLBACK)\b/i', $text ) ) {
			$this->in_transaction = false;
		}
		if ( 'primary' === $target || ! $this->replica() ) {
			return parent::query( $query );
		}
		$primary   = $this->dbh;
		$this->dbh = $this->replica_dbh;
		try {
			return parent::query( $query );
		} finally {
			$this->dbh = $primary;
		}
	}

	private function replica() {
		if ( null === $this->replica_dbh ) {
			$this->replica_dbh = mysqli_init();
			$host              = $this->parse_db_host( $this->dbhost );
			$socket            = is_array( $host ) ? $host[2] : null;
			if ( ! @mysqli_real_connect( $this->replica_dbh, 'localhost', $this->dbuser, $this->dbpassword, 'wordpress_replica', null, $socket ) ) {
				$this->replica_dbh = false;
			} else {
				mysqli_set_charset( $this->replica_dbh, 'utf8mb4' );
			}
		}
		return (bool) $this->replica_dbh;
	}

	private static function log( $target, $text ) {
		file_put_contents(
			WP_CONTENT_DIR . '/hookpress-splitter.log',
			$target . "\t" . preg_replace( '/\s+/', ' ', $text ) . "\n",
			FILE_APPEND | LOCK_EX
		);
	}
}

if ( 'cli' !== PHP_SAPI ) {
	$wpdb = new Hookpress_Test_Splitting_Wpdb( DB_USER, DB_PASSWORD, DB_NAME, DB_HOST );
}
