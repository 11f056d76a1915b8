<?php
// Installed into the docroot by tests/e2e/test_plugin_boundary.py: the address the
// PHP server hands to WordPress as the peer's.
echo $_SERVER['REMOTE_ADDR'];
