<?php
// Output buffering: a header after output works while the output sits
// in a buffer; once every buffer is flushed, the headers are sent.
ob_start();
echo "buffered ";
$before = headers_sent();
header('X-After-Output: yes');
header('X-Removed: gone');
header('X-Kept: kept');
header_remove('X-Removed');
while (ob_get_level() > 0) {
    ob_end_flush();
}
echo json_encode(['headers_sent_before' => $before, 'headers_sent_after' => headers_sent()]);
