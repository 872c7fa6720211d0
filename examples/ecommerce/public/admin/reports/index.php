<?php
// The sales report, run by PHP-FPM (the /admin/reports/ rule, priority 80):
// reports read every order and can take minutes on a real shop, longer
// than embedded PHP's 30 s max_execution_time, and would hold an embedded
// PHP thread all that time. FPM's own pool and limits keep them apart.
// ?format=csv downloads every order line.
//
// No authentication here: put the real admin's login (or the reverse
// proxy's) in front of /admin/ before this leaves your machine.
declare(strict_types=1);
require __DIR__ . '/../../../lib/shop.php';

set_time_limit(300);
header('Cache-Control: no-store');
$orders = orders_all();

if (($_GET['format'] ?? '') === 'csv') {
    header('Content-Type: text/csv; charset=utf-8');
    header('Content-Disposition: attachment; filename="orders.csv"');
    $out = fopen('php://output', 'w');
    fputcsv($out, ['order', 'created', 'email', 'product_id', 'product', 'qty', 'line_total_cents']);
    foreach ($orders as $o) {
        foreach ($o['items'] as $item) {
            fputcsv($out, [$o['id'], $o['created'], $o['email'], $item['product_id'], $item['name'], $item['qty'], $item['line_total']]);
        }
    }
    return;
}

$revenue = 0;
$units = [];
foreach ($orders as $o) {
    $revenue += $o['total'];
    foreach ($o['items'] as $item) {
        $units[$item['name']] = ($units[$item['name']] ?? 0) + $item['qty'];
    }
}
arsort($units);
?>
<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Sales report - <?= h(SHOP_NAME) ?></title>
  <link rel="stylesheet" href="/static/shop.css">
</head>
<body>
  <header><h1><a href="/"><?= h(SHOP_NAME) ?></a>: sales report</h1></header>
  <p class="note">This page: <?= h(backend_name()) ?>, <code>PHP_SAPI</code> = <code id="sapi"><?= h(PHP_SAPI) ?></code>.</p>
  <p>Orders: <strong id="orders"><?= count($orders) ?></strong>, revenue: <strong id="revenue"><?= h(money($revenue)) ?></strong>.</p>
  <table>
    <tr><th>Product</th><th>Units sold</th></tr>
<?php foreach ($units as $product => $n): ?>
    <tr><td><?= h($product) ?></td><td><?= $n ?></td></tr>
<?php endforeach ?>
  </table>
  <p><a href="/admin/reports/?format=csv">Download every order line (CSV)</a></p>
</body>
</html>
