<?php
echo "before the exception\n";
throw new RuntimeException('uncaught for the test');
