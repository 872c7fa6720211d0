<?php
header('X-Foo: bar');
header('X-Gone: soon');
header('X-Multi: one');
header('X-Multi: two', false);
header_remove('X-Gone');
header_remove('X-Powered-By');
echo "headers";
