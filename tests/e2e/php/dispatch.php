<?php
// One REST request dispatched inside WordPress as an application password would
// have authenticated it, with some of the access guard's check points removed;
// prints {status, data}. tests/e2e/test_plugin_boundary.py runs it
// (WordPressServer.run_php_file) with $hp_args: remove (check points to take
// out), address, method, route, content_type, body.
$user = get_user_by('login', 'hookpress-ingest');
wp_set_current_user($user->ID);
// What core sets when an application password authenticated the request.
$GLOBALS['wp_rest_application_password_uuid'] = wp_generate_uuid4();
$server = rest_get_server();
$remove = $hp_args['remove'];
if (in_array('pre_dispatch', $remove, true)) {
    remove_filter('rest_pre_dispatch', array('Hookpress_Access_Guard', 'pre_dispatch'), 5);
}
if (in_array('before_callbacks', $remove, true)) {
    remove_filter('rest_request_before_callbacks',
        array('Hookpress_Access_Guard', 'before_callbacks'), PHP_INT_MAX);
}
$_SERVER['REMOTE_ADDR'] = $hp_args['address'];
$request = new WP_REST_Request($hp_args['method'], $hp_args['route']);
$request->set_header('Content-Type', $hp_args['content_type']);
$request->set_body($hp_args['body']);
if (!$request->is_json_content_type()) {
    // A form body: WordPress reads the fields from the body parameters.
    $request->set_body_params(json_decode($hp_args['body'], true));
}
$response = rest_do_request($request);
if (is_wp_error($response)) {
    // A refusal in rest_pre_dispatch comes back as the error itself.
    $response = rest_convert_error_to_response($response);
}
echo json_encode(array('status' => $response->get_status(), 'data' => $response->get_data()));
