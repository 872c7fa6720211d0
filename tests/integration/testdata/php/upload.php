<?php
// Reports each uploaded file; md5 is computed by PHP from the temporary file.
$files = [];
foreach ($_FILES as $field => $f) {
    $files[$field] = [
        'name' => $f['name'],
        'type' => $f['type'],
        'size' => $f['size'],
        'error' => $f['error'],
        'md5' => $f['error'] === UPLOAD_ERR_OK ? md5_file($f['tmp_name']) : null,
        'is_uploaded_file' => is_uploaded_file($f['tmp_name']),
    ];
}
header('Content-Type: application/json');
echo json_encode(['files' => (object)$files, 'post' => (object)$_POST], JSON_UNESCAPED_SLASHES);
