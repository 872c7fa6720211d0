<?php
register_shutdown_function(function () {
    echo "shutdown ran\n";
    exit();
    echo "never\n";
});
echo "body before exit\n";
