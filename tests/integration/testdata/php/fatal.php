<?php
// Nothing is output before the fatal error, so the status can still be 500.
undefined_function_fe_php_test();
