<?php
// Sets its own Cache-Control: a rule's configured header must win.
header('Cache-Control: public, max-age=60');
header('X-Frame-Options: DENY');
echo "cached?\n";
