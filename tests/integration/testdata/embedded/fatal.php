<?php
echo "before the fatal error\n";
undefined_function_for_test();
echo "after\n";
