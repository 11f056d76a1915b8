<?php
// Router for php -S: files are served as they are, anything else goes to
// WordPress's front controller, as Apache's rewrite rules would send it.
$root = rtrim( $_SERVER['DOCUMENT_ROOT'], '/' );
$path = rawurldecode( (string) parse_url( $_SERVER['REQUEST_URI'], PHP_URL_PATH ) );
// realpath() refuses a NUL byte with an error: such a path is no file.
$file = false === strpos( $path, "\0" ) ? realpath( $root . $path ) : false;
if ( false !== $file && ( $file === $root || 0 === strpos( $file, $root . '/' ) ) ) {
	if ( is_dir( $file ) ) {
		if ( '/' !== substr( $path, -1 ) ) {
			header( 'Location: ' . $path . '/', true, 301 );
			return true;
		}
		if ( is_file( $file . '/index.php' ) ) {
			return false;
		}
	} elseif ( is_file( $file ) ) {
		return false;
	}
}
$_SERVER['SCRIPT_NAME']     = '/index.php';
$_SERVER['PHP_SELF']        = '/index.php';
$_SERVER['SCRIPT_FILENAME'] = $root . '/index.php';
chdir( $root );
require $root . '/index.php';
