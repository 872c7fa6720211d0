<?php
error_log('hello-embedded');
trigger_error('warned-embedded', E_USER_WARNING);
echo "logged";
