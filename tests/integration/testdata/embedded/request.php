<?php
// Everything PHP sees of the request, as JSON.
$keys = ['REQUEST_METHOD', 'SCRIPT_NAME', 'SCRIPT_FILENAME', 'PATH_INFO', 'PHP_SELF',
    'REQUEST_URI', 'QUERY_STRING', 'HTTP_HOST', 'DOCUMENT_ROOT', 'SERVER_PROTOCOL',
    'GATEWAY_INTERFACE', 'REMOTE_ADDR', 'SERVER_NAME', 'SERVER_PORT', 'CONTENT_TYPE',
    'CONTENT_LENGTH', 'HTTP_X_CUSTOM_HEADER', 'REQUEST_TIME', 'HTTPS'];
$server = [];
foreach ($keys as $k) {
    if (array_key_exists($k, $_SERVER)) {
        $server[$k] = $_SERVER[$k];
    }
}
$files = [];
foreach ($_FILES as $name => $f) {
    $files[$name] = [
        'name' => $f['name'],
        'type' => $f['type'],
        'size' => $f['size'],
        'error' => $f['error'],
        'content' => $f['error'] === UPLOAD_ERR_OK ? file_get_contents($f['tmp_name']) : null,
        'uploaded' => is_uploaded_file($f['tmp_name']),
    ];
}
header('Content-Type: application/json');
echo json_encode([
    'server' => $server,
    'get' => (object)$_GET,
    'post' => (object)$_POST,
    'cookie' => (object)$_COOKIE,
    'files' => (object)$files,
    'input' => file_get_contents('php://input'),
    'getallheaders' => (object)getallheaders(),
    'apache_request_headers' => (object)apache_request_headers(),
    'getenv_script_name' => getenv('SCRIPT_NAME'),
]);
