<?php
// The checkout, run by PHP-FPM (the /checkout/ rule, priority 85): payment
// code is where a crash or a leak must not take the whole server down, so
// it runs in FPM's separate processes. It reads the cart the embedded cart
// API wrote into the session, and empties it once the order is placed.
declare(strict_types=1);
require __DIR__ . '/../../lib/shop.php';

shop_session();
header('Cache-Control: no-store');
$_SESSION['csrf'] ??= bin2hex(random_bytes(16));
$errors = [];
$name = trim((string) ($_POST['name'] ?? ''));
$email = trim((string) ($_POST['email'] ?? ''));

if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    $cart = cart_view(cart_get());
    if (!hash_equals($_SESSION['csrf'], (string) ($_POST['csrf'] ?? ''))) {
        $errors[] = 'The form expired: please submit it again.';
    }
    if ($name === '') {
        $errors[] = 'Please give your name.';
    }
    if (filter_var($email, FILTER_VALIDATE_EMAIL) === false) {
        $errors[] = 'Please give a valid e-mail address.';
    }
    if ($cart['count'] === 0) {
        $errors[] = 'Your cart is empty.';
    }
    if (!$errors) {
        // A real shop charges the card here, with a payment provider's SDK.
        $order = order_add(['name' => $name, 'email' => $email, 'items' => $cart['items'],
            'total' => $cart['total'], 'sapi' => PHP_SAPI]);
        cart_set([]);
        $_SESSION['last_order'] = $order['id'];
        session_regenerate_id(true);
        // Post/Redirect/Get: a reload does not order twice.
        header('Location: /checkout/?order=' . rawurlencode($order['id']), true, 303);
        return;
    }
    http_response_code(422);
}

$placed = isset($_GET['order']) && ($_SESSION['last_order'] ?? null) === $_GET['order'] ? $_GET['order'] : null;
$cart = cart_view(cart_get());
?>
<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Checkout - <?= h(SHOP_NAME) ?></title>
  <link rel="stylesheet" href="/static/shop.css">
</head>
<body>
  <header><h1><a href="/"><?= h(SHOP_NAME) ?></a>: checkout</h1></header>
  <p class="note">This page: <?= h(backend_name()) ?>, <code>PHP_SAPI</code> = <code id="sapi"><?= h(PHP_SAPI) ?></code>.</p>
<?php if ($placed !== null): ?>
  <p class="ok" id="placed">Thank you! Order <strong id="order-id"><?= h($placed) ?></strong> is placed.</p>
<?php endif ?>
<?php foreach ($errors as $e): ?>
  <p class="error"><?= h($e) ?></p>
<?php endforeach ?>
<?php if ($cart['count'] === 0): ?>
  <p id="empty">Your cart is empty. <a href="/">Back to the shop</a></p>
<?php else: ?>
  <table id="cart">
    <tr><th>Product</th><th>Qty</th><th>Price</th></tr>
<?php foreach ($cart['items'] as $item): ?>
    <tr><td><?= h($item['name']) ?></td><td><?= $item['qty'] ?></td><td><?= h($item['line_total_text']) ?></td></tr>
<?php endforeach ?>
    <tr><th colspan="2">Total</th><th id="total"><?= h($cart['total_text']) ?></th></tr>
  </table>
  <form method="post" action="/checkout/">
    <input type="hidden" name="csrf" value="<?= h($_SESSION['csrf']) ?>">
    <label>Name <input name="name" value="<?= h($name) ?>" required></label>
    <label>E-mail <input name="email" type="email" value="<?= h($email) ?>" required></label>
    <button type="submit">Place order</button>
  </form>
<?php endif ?>
</body>
</html>
