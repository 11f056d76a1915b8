<?php
// What of the plugin a site holds, as JSON: its posts, meta, options, tables,
// role and capabilities, cron events, each user's roles and passwords, and the
// other posts that must survive. tests/e2e/test_plugin_uninstall.py reads it
// before and after an uninstall (WordPressServer.run_php_file).
global $wpdb;
$ids = $wpdb->get_col("SELECT ID FROM {$wpdb->posts} WHERE post_type = 'ai_event'");
$in = implode(',', array_map('intval', $ids));
$meta = empty($ids) ? 0 : (int) $wpdb->get_var(
    "SELECT COUNT(*) FROM {$wpdb->postmeta} WHERE post_id IN ($in)"
);
$caps = array();
foreach (wp_roles()->roles as $name => $role) {
    foreach (array_keys($role['capabilities']) as $cap) {
        if (0 === strpos($cap, 'hookpress_') || preg_match('/ai_events?$/', $cap)) {
            $caps[] = "$name:$cap";
        }
    }
}
// Users: any role or capability of ours left in their meta, and their passwords.
$users = array();
foreach (get_users(array('fields' => 'all')) as $user) {
    $ours = array_values(array_filter(array_keys($user->caps), function ($cap) {
        return 0 === strpos($cap, 'hookpress_');
    }));
    $users[$user->user_login] = array(
        'ours' => $ours,
        'roles' => array_values($user->roles),
        'passwords' => count(WP_Application_Passwords::get_user_application_passwords($user->ID)),
    );
}
echo json_encode(array(
    'posts' => count($ids),
    'meta' => $meta,
    'options' => $wpdb->get_col(
        "SELECT option_name FROM {$wpdb->options} WHERE option_name LIKE 'hookpress\\_%'"
    ),
    'tables' => $wpdb->get_col("SHOW TABLES LIKE '%hookpress%'"),
    'role' => null !== get_role('hookpress_ingest'),
    'caps' => $caps,
    'cron' => (bool) wp_next_scheduled('hookpress_purge_idempotency')
        || (bool) wp_next_scheduled('hookpress_prune_events'),
    'users' => $users,
    'others' => (int) $wpdb->get_var(
        "SELECT COUNT(*) FROM {$wpdb->posts} p JOIN {$wpdb->postmeta} m ON m.post_id = p.ID
        WHERE p.post_type = 'post' AND m.meta_key = 'kept'"
    ),
));
