<?php
// What every page of the shop shares, on both backends: the catalogue, the
// cart (kept in the PHP session) and the order book. Lives outside public/,
// so that no URL reaches it.
//
// The cart is written by the cart API (embedded PHP, inside fe-php) and
// read by the checkout (PHP-FPM): both PHPs must use the same session
// files, which is why fe-php.toml's [php.ini] and the FPM pool set the same
// session.save_path, and why both run as the same user.

declare(strict_types=1);

const SHOP_NAME = 'fe-php shop';
const MAX_QTY = 99;

/** The catalogue: id => product. A real shop reads a database. */
function products(): array
{
    static $products = [
        1 => ['id' => 1, 'sku' => 'mug', 'name' => 'Elephant mug', 'price' => 1200, 'stock' => 25,
            'description' => 'A 350 ml mug with an elePHPant on it.'],
        2 => ['id' => 2, 'sku' => 'tee', 'name' => 'fe-php T-shirt', 'price' => 2500, 'stock' => 40,
            'description' => 'Organic cotton, printed with the routing table.'],
        3 => ['id' => 3, 'sku' => 'stickers', 'name' => 'Sticker pack', 'price' => 450, 'stock' => 200,
            'description' => 'Six stickers: one for each backend, three spares.'],
        4 => ['id' => 4, 'sku' => 'plush', 'name' => 'Plush elePHPant', 'price' => 3000, 'stock' => 5,
            'description' => 'Soft, blue, and sold out fast.'],
    ];
    return $products;
}

/** A product with the URL of its image (served by the static backend). */
function product_view(array $p): array
{
    return $p + ['image' => '/images/products/' . $p['sku'] . '.png', 'price_text' => money($p['price'])];
}

/** Cents to "12.00 EUR". */
function money(int $cents): string
{
    return sprintf('%d.%02d EUR', intdiv($cents, 100), $cents % 100);
}

/** Starts the session the cart lives in (the same cookie on both backends). */
function shop_session(): void
{
    if (session_status() !== PHP_SESSION_ACTIVE) {
        session_start(['cookie_httponly' => true, 'cookie_samesite' => 'Lax']);
    }
}

/** The cart as product id => quantity. */
function cart_get(): array
{
    shop_session();
    return $_SESSION['cart'] ?? [];
}

function cart_set(array $cart): void
{
    shop_session();
    $_SESSION['cart'] = array_filter($cart, fn(int $qty) => $qty > 0);
}

/** The cart with names, prices and totals, as the API and the checkout show it. */
function cart_view(array $cart): array
{
    $items = [];
    $total = 0;
    $count = 0;
    foreach ($cart as $id => $qty) {
        $p = products()[$id] ?? null;
        if ($p === null) {
            continue;
        }
        $line = $p['price'] * $qty;
        $items[] = ['product_id' => $id, 'name' => $p['name'], 'qty' => $qty,
            'unit_price' => $p['price'], 'line_total' => $line, 'line_total_text' => money($line)];
        $total += $line;
        $count += $qty;
    }
    return ['items' => $items, 'count' => $count, 'total' => $total, 'total_text' => money($total)];
}

/** Where orders are kept: var/orders.jsonl beside public/ (one JSON order a line). */
function orders_file(): string
{
    $dir = dirname(__DIR__) . '/var';
    if (!is_dir($dir) && !mkdir($dir, 0o770, true) && !is_dir($dir)) {
        throw new RuntimeException("cannot create $dir");
    }
    return $dir . '/orders.jsonl';
}

/** Appends an order under an exclusive lock; returns it with its id. */
function order_add(array $order): array
{
    $f = fopen(orders_file(), 'c+');
    flock($f, LOCK_EX);
    $n = 0;
    while (fgets($f) !== false) {
        $n++;
    }
    $order = ['id' => sprintf('A%05d', $n + 1), 'created' => gmdate(DATE_ATOM)] + $order;
    fwrite($f, json_encode($order) . "\n");
    fflush($f);
    flock($f, LOCK_UN);
    fclose($f);
    return $order;
}

/** Every order, oldest first. */
function orders_all(): array
{
    $file = orders_file();
    if (!is_file($file)) {
        return [];
    }
    $f = fopen($file, 'r');
    flock($f, LOCK_SH);
    $orders = [];
    while (($line = fgets($f)) !== false) {
        $orders[] = json_decode($line, true);
    }
    flock($f, LOCK_UN);
    fclose($f);
    return $orders;
}

function h(string $s): string
{
    return htmlspecialchars($s, ENT_QUOTES);
}

/** Which backend runs this script: "fe-php" (embedded) or "fpm-fcgi" (PHP-FPM). */
function backend_name(): string
{
    return PHP_SAPI === 'fpm-fcgi' ? 'PHP-FPM (fastcgi backend)' : 'embedded PHP (embedded backend)';
}
