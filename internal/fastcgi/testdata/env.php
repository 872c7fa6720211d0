<?php
// Prints $_SERVER and some facts about the worker as JSON.
header('Content-Type: application/json');
$out = $_SERVER;
$out['__pid'] = getmypid();
echo json_encode($out);
