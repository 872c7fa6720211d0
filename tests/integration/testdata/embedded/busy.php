<?php
echo "before the loop\n";
while (true) {
}
