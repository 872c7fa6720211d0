<?php
// The SPA's JSON API, run by embedded PHP (the /api/ rule, priority 90).
// Every /api/ path that names no file reaches this script (fe-php.toml's
// front_controller), with the original REQUEST_URI:
//
//   GET    /api/status       which PHP answers
//   GET    /api/notes        every note
//   POST   /api/notes        add {"text": "..."}
//   DELETE /api/notes/{id}   delete one
//
// Notes are kept in var/notes.json beside api/, outside every URL.
declare(strict_types=1);

header('Content-Type: application/json');
header('Cache-Control: no-store');

function reply(int $status, ?array $data = null): void
{
    http_response_code($status);
    if ($data !== null) {
        echo json_encode($data), "\n";
    }
}

/** Runs $fn on the list of notes under an exclusive lock and saves what it returns. */
function with_notes(callable $fn): mixed
{
    $dir = dirname(__DIR__) . '/var';
    if (!is_dir($dir) && !mkdir($dir, 0o770, true) && !is_dir($dir)) {
        throw new RuntimeException("cannot create $dir");
    }
    $f = fopen($dir . '/notes.json', 'c+');
    flock($f, LOCK_EX);
    $notes = json_decode(stream_get_contents($f) ?: '[]', true) ?: [];
    [$notes, $result] = $fn($notes);
    ftruncate($f, 0);
    rewind($f);
    fwrite($f, json_encode($notes));
    flock($f, LOCK_UN);
    fclose($f);
    return $result;
}

$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);
$method = $_SERVER['REQUEST_METHOD'];

if ($path === '/api/status' && $method === 'GET') {
    reply(200, ['ok' => true, 'sapi' => PHP_SAPI, 'php' => PHP_VERSION, 'time' => gmdate(DATE_ATOM)]);
    return;
}

if ($path === '/api/notes' && $method === 'GET') {
    reply(200, ['notes' => with_notes(fn($notes) => [$notes, $notes]), 'sapi' => PHP_SAPI]);
    return;
}

if ($path === '/api/notes' && $method === 'POST') {
    $body = json_decode(file_get_contents('php://input') ?: 'null', true);
    $text = is_array($body) && is_string($body['text'] ?? null) ? trim($body['text']) : '';
    if ($text === '' || mb_strlen($text) > 200) {
        reply(422, ['error' => 'want {"text": "..."} with 1 to 200 characters']);
        return;
    }
    $note = with_notes(function ($notes) use ($text) {
        $note = ['id' => bin2hex(random_bytes(6)), 'text' => $text, 'created' => gmdate(DATE_ATOM)];
        $notes[] = $note;
        return [$notes, $note];
    });
    reply(201, ['note' => $note, 'sapi' => PHP_SAPI]);
    return;
}

if (preg_match('#^/api/notes/([0-9a-f]{12})$#', $path, $m) && $method === 'DELETE') {
    $found = with_notes(function ($notes) use ($m) {
        $kept = array_values(array_filter($notes, fn($n) => $n['id'] !== $m[1]));
        return [$kept, count($kept) !== count($notes)];
    });
    $found ? reply(204) : reply(404, ['error' => 'no such note']);
    return;
}

if ($path === '/api/status' || $path === '/api/notes' || preg_match('#^/api/notes/[^/]+$#', $path)) {
    header('Allow: ' . match (true) {
        $path === '/api/status' => 'GET',
        $path === '/api/notes' => 'GET, POST',
        default => 'DELETE',
    });
    reply(405, ['error' => 'method not allowed']);
    return;
}

reply(404, ['error' => 'no such endpoint', 'path' => $path]);
