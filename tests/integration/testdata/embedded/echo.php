<?php
// Answers ?id= in a header and in the body: a response whose header and
// body disagree got another request's headers.
$id = preg_replace('/[^0-9]/', '', $_GET['id'] ?? '');
header("X-Echo: $id");
echo $id;
