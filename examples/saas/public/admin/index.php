<?php
// The admin screen runs on PHP-FPM (the fastcgi backend): isolated from
// the server process, as the specification recommends for admin screens.
header('Cache-Control: no-store');
?>
<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>fe-php demo: admin</title><link rel="stylesheet" href="/assets/app.css"></head>
<body>
  <main>
    <h1>Admin</h1>
    <p>Served by PHP-FPM: <code>php_sapi_name()</code> is <code><?= htmlspecialchars(php_sapi_name()) ?></code>,
      process <?= getmypid() ?>.</p>
    <p><a href="/">Back to the embedded page</a></p>
  </main>
</body>
</html>
