<?php
echo "first";
flush();
usleep(300000);
echo "second";
