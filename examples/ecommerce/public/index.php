<?php
// The shop's front controller, run by embedded PHP: the storefront at "/"
// (default_backend), the products API under /api/products/ and the cart
// API under /api/cart/ (priority 90 rules). Every path that names no file
// lands here with its original REQUEST_URI.
declare(strict_types=1);
require __DIR__ . '/../lib/shop.php';

$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH) ?: '/';
$method = $_SERVER['REQUEST_METHOD'];

function json_out(int $status, array $data): void
{
    http_response_code($status);
    header('Content-Type: application/json');
    header('Cache-Control: no-store');
    echo json_encode($data + ['sapi' => PHP_SAPI]), "\n";
}

function method_not_allowed(string ...$allowed): void
{
    header('Allow: ' . implode(', ', $allowed));
    json_out(405, ['error' => 'method not allowed']);
}

// GET /api/products/       the catalogue
// GET /api/products/{id}   one product
if (preg_match('#^/api/products/?(?:(\d+)/?)?$#', $path, $m)) {
    if ($method !== 'GET' && $method !== 'HEAD') {
        method_not_allowed('GET', 'HEAD');
        return;
    }
    if (!isset($m[1])) {
        json_out(200, ['products' => array_values(array_map('product_view', products()))]);
        return;
    }
    $p = products()[(int) $m[1]] ?? null;
    if ($p === null) {
        json_out(404, ['error' => 'no such product']);
        return;
    }
    json_out(200, ['product' => product_view($p)]);
    return;
}

// GET    /api/cart/        the cart
// POST   /api/cart/        add {"product_id": 1, "qty": 2} (qty defaults to 1)
// PUT    /api/cart/{id}    set a line's quantity {"qty": 3} (0 removes it)
// DELETE /api/cart/{id}    remove a line
// DELETE /api/cart/        empty the cart
if (preg_match('#^/api/cart/?(?:(\d+)/?)?$#', $path, $m)) {
    $id = isset($m[1]) ? (int) $m[1] : null;
    $cart = cart_get();
    $body = json_decode(file_get_contents('php://input') ?: 'null', true);
    $status = 200;
    switch (true) {
        case $method === 'GET' && $id === null:
            break;
        case $method === 'POST' && $id === null:
            $pid = is_array($body) ? ($body['product_id'] ?? null) : null;
            $qty = is_array($body) ? ($body['qty'] ?? 1) : 1;
            if (!is_int($pid) || !isset(products()[$pid]) || !is_int($qty) || $qty < 1) {
                json_out(422, ['error' => 'want {"product_id": <a product id>, "qty": <a positive integer>}']);
                return;
            }
            $cart[$pid] = min(MAX_QTY, ($cart[$pid] ?? 0) + $qty, products()[$pid]['stock']);
            $status = 201;
            break;
        case $method === 'PUT' && $id !== null:
            $qty = is_array($body) ? ($body['qty'] ?? null) : null;
            if (!isset(products()[$id]) || !is_int($qty) || $qty < 0) {
                json_out(422, ['error' => 'want {"qty": <an integer >= 0>} for a product in the catalogue']);
                return;
            }
            $cart[$id] = min(MAX_QTY, $qty, products()[$id]['stock']);
            break;
        case $method === 'DELETE':
            if ($id === null) {
                $cart = [];
            } else {
                unset($cart[$id]);
            }
            break;
        default:
            method_not_allowed(...($id === null ? ['GET', 'POST', 'DELETE'] : ['PUT', 'DELETE']));
            return;
    }
    cart_set($cart);
    json_out($status, ['cart' => cart_view(cart_get())]);
    return;
}

if (str_starts_with($path, '/api/')) {
    json_out(404, ['error' => 'no such endpoint']);
    return;
}

if ($path !== '/') {
    http_response_code(404);
    header('Content-Type: text/plain; charset=utf-8');
    echo "Not found\n";
    return;
}

// The storefront: rendered here, made live by /static/shop.js. A visitor
// without a cart gets no session (no session file per crawler hit).
$count = isset($_COOKIE[session_name()]) ? cart_view(cart_get())['count'] : 0;
?>
<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title><?= h(SHOP_NAME) ?></title>
  <link rel="stylesheet" href="/static/shop.css">
</head>
<body>
  <header>
    <h1><?= h(SHOP_NAME) ?></h1>
    <a class="cart" href="/checkout/">Cart (<span id="cart-count"><?= $count ?></span>) &rarr; checkout</a>
  </header>
  <p class="note">This page: <?= h(backend_name()) ?>, <code>PHP_SAPI</code> = <code><?= h(PHP_SAPI) ?></code>.</p>
  <main class="products">
<?php foreach (products() as $p): $v = product_view($p); ?>
    <article class="product">
      <img src="<?= h($v['image']) ?>" alt="" width="64" height="64">
      <h2><?= h($p['name']) ?></h2>
      <p><?= h($p['description']) ?></p>
      <p class="price"><?= h($v['price_text']) ?></p>
      <button type="button" data-add="<?= $p['id'] ?>">Add to cart</button>
    </article>
<?php endforeach ?>
  </main>
  <footer><a href="/admin/reports/">Sales report</a> (PHP-FPM)</footer>
  <script src="/static/shop.js"></script>
</body>
</html>
