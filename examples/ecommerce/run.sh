#!/usr/bin/env bash
# Runs the e-commerce example: a php-fpm for /checkout/ and
# /admin/reports/ (its own config, a Unix socket in run/, the same
# session.save_path as fe-php.toml's [php.ini]), then fe-php in the
# foreground. Ctrl-C stops both.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${FE_PHP:-$here/../../bin/fe-php}
fpm=$(command -v php-fpm8.2 || true)
[ -n "$fpm" ] || { echo "ecommerce: php-fpm8.2 is missing (make deps installs it)" >&2; exit 1; }

run=$here/run
mkdir -p "$run"
rm -f "$run/php-fpm.sock"
cat > "$run/php-fpm.conf" <<CONF
[global]
pid = $run/php-fpm.pid
error_log = $run/php-fpm.log
daemonize = no

[ecommerce]
listen = $run/php-fpm.sock
pm = static
pm.max_children = 4
catch_workers_output = yes
; the cart written by embedded PHP is read here: the same session files
php_admin_value[session.save_path] = /var/lib/php/sessions
CONF
"$fpm" -n -R -y "$run/php-fpm.conf" -d "zend_extension=opcache" &
fpm_pid=$!
trap 'kill $fpm_pid 2>/dev/null; wait $fpm_pid 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -S "$run/php-fpm.sock" ] && break; sleep 0.1; done

"$bin" check -c "$here/fe-php.toml"
echo "ecommerce: http://127.0.0.1:8080/ (embedded storefront), /api/products/ and /api/cart/ (embedded JSON), /checkout/ and /admin/reports/ (PHP-FPM), /static/ and /images/products/ (static)"
"$bin" run -c "$here/fe-php.toml"
