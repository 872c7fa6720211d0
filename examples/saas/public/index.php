<?php
// The demo's front controller: every path that names no file lands here
// (try_files $uri $uri/ /index.php), with the original REQUEST_URI.
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);

if (str_starts_with($path, '/api/')) {
    header('Content-Type: application/json');
    $routes = [
        '/api/time' => fn() => ['time' => date(DATE_ATOM), 'unix' => time()],
        '/api/hello' => fn() => ['hello' => $_GET['name'] ?? 'world'],
        '/api/runtime' => fn() => [
            'sapi' => php_sapi_name(),
            'php' => PHP_VERSION,
            'zts' => (bool) PHP_ZTS,
            'opcache' => function_exists('opcache_get_status') && (opcache_get_status(false)['opcache_enabled'] ?? false),
        ],
    ];
    if (!isset($routes[$path])) {
        http_response_code(404);
        echo json_encode(['error' => 'no such endpoint', 'path' => $path]);
        return;
    }
    echo json_encode($routes[$path](), JSON_PRETTY_PRINT), "\n";
    return;
}

$sapi = htmlspecialchars(php_sapi_name());
?>
<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>fe-php demo</title>
  <link rel="stylesheet" href="/assets/app.css">
</head>
<body>
  <main>
    <h1>fe-php</h1>
    <p>This page is PHP run by the <strong>embedded</strong> backend (<code>php_sapi_name()</code> is
      <code><?= $sapi ?></code>), inside fe-php's own process.</p>
    <ul>
      <li><a href="/api/runtime">/api/runtime</a>, <a href="/api/time">/api/time</a>,
        <a href="/api/hello?name=fe-php">/api/hello</a>: a JSON API, embedded (priority 90)</li>
      <li><a href="/admin/">/admin/</a>: the admin screen, on PHP-FPM through the <strong>fastcgi</strong> backend (priority 80)</li>
      <li><a href="/assets/app.css">/assets/app.css</a>: a file sent by the <strong>static</strong> backend (priority 100)</li>
      <li><a href="/some/deep/link?x=1">/some/deep/link</a>: no file there, so the front controller, this page</li>
    </ul>
    <p>You asked for <code><?= htmlspecialchars($_SERVER['REQUEST_URI']) ?></code>.</p>
  </main>
  <script src="/assets/app.js"></script>
</body>
</html>
