#!/usr/bin/env bash
# A throwaway WordPress site on Debian's `wordpress` package, for the
# end-to-end tests and the benchmark. Nothing of it listens on a network:
# MariaDB runs with --skip-networking and speaks over a Unix socket.
#
#   wp-site.sh start DIR HOST   start MariaDB in DIR, create the database,
#                               lay out DIR/webroot and write
#                               /etc/wordpress/config-HOST.php
#   wp-site.sh stop DIR HOST    stop that MariaDB, remove the config file
#
# Debian's wp-config.php picks /etc/wordpress/config-<Host header>.php, so a
# unique HOST (say wp-1234.localhost) keeps sites apart. The site is not
# installed yet: the caller runs WordPress's own installer over HTTP.
#
# Layout, after Debian's split of code and content:
#   /usr/share/wordpress       code (php.document_root)
#   DIR/webroot/wp-content     this site's content (WP_CONTENT_DIR): uploads/
#                              plus themes and plugins linked to Debian's
#   DIR/webroot/wp-includes -> /usr/share/wordpress/wp-includes
# DIR/webroot is the static root: /wp-content/... and /wp-includes/... map
# onto it as they do for WordPress's URLs.
set -euo pipefail

usage() { echo "usage: $0 start|stop DIR HOST" >&2; exit 2; }
[ $# -eq 3 ] || usage
cmd=$1 dir=$2 host=$3
[[ $host =~ ^[a-z0-9.-]+$ ]] || { echo "wp-site: HOST must be lower-case letters, digits, dots and dashes: $host" >&2; exit 2; }
config=/etc/wordpress/config-$host.php
sock=$dir/mysql.sock

stop() {
  if [ -f "$dir/mysql.pid" ]; then
    pid=$(cat "$dir/mysql.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$config"
}

start() {
  for f in /usr/share/wordpress/wp-settings.php /usr/sbin/mariadbd /usr/bin/mariadb-install-db; do
    [ -e "$f" ] || { echo "wp-site: $f is missing: install wordpress and mariadb-server (scripts/deps.sh)" >&2; exit 1; }
  done
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  sock=$dir/mysql.sock
  # Unix socket paths are limited to 107 bytes.
  [ ${#sock} -lt 100 ] || { echo "wp-site: DIR is too long for a Unix socket path: $dir" >&2; exit 2; }

  # A tmpdir of its own: MariaDB deletes every "#sql*" file in its tmpdir
  # when it starts, so instances sharing /tmp delete each other's temporary
  # tables (seen as install failures and a segfault under parallel tests).
  mkdir -p "$dir/tmp"
  mariadb-install-db --no-defaults --user="$(id -un)" --datadir="$dir/mysql" --tmpdir="$dir/tmp" \
    --auth-root-authentication-method=socket --skip-test-db >"$dir/mysql-install.log" 2>&1 ||
    { cat "$dir/mysql-install.log" >&2; exit 1; }
  /usr/sbin/mariadbd --no-defaults --user="$(id -un)" --datadir="$dir/mysql" --tmpdir="$dir/tmp" \
    --socket="$sock" --pid-file="$dir/mysql.pid" --skip-networking \
    --log-error="$dir/mysql.err" --innodb-buffer-pool-size=64M \
    --skip-log-bin </dev/null >/dev/null 2>&1 &
  for _ in $(seq 300); do [ -S "$sock" ] && break; sleep 0.1; done
  [ -S "$sock" ] || { echo "wp-site: MariaDB did not start:" >&2; tail -20 "$dir/mysql.err" >&2; exit 1; }

  password=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  mariadb --no-defaults --socket="$sock" -uroot <<SQL
CREATE DATABASE wordpress CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER 'wordpress'@'localhost' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON wordpress.* TO 'wordpress'@'localhost';
SQL

  web=$dir/webroot
  mkdir -p "$web/wp-content/uploads"
  ln -sfn /usr/share/wordpress/wp-content/themes "$web/wp-content/themes"
  ln -sfn /usr/share/wordpress/wp-content/plugins "$web/wp-content/plugins"
  ln -sfn /usr/share/wordpress/wp-includes "$web/wp-includes"
  # PHP-FPM's workers may run as www-data: let them write uploads.
  chown -R www-data:www-data "$web/wp-content/uploads" 2>/dev/null || true

  salts=""
  for k in AUTH_KEY SECURE_AUTH_KEY LOGGED_IN_KEY NONCE_KEY AUTH_SALT SECURE_AUTH_SALT LOGGED_IN_SALT NONCE_SALT; do
    salts+="define('$k', '$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')');"$'\n'
  done
  mkdir -p /etc/wordpress
  cat >"$config" <<PHP
<?php
// Written by fe-php's scripts/wp-site.sh for a test site; removed by "stop".
define('DB_NAME', 'wordpress');
define('DB_USER', 'wordpress');
define('DB_PASSWORD', '$password');
define('DB_HOST', 'localhost:$sock');
define('WP_CONTENT_DIR', '$web/wp-content');
define('FS_METHOD', 'direct');
// This machine has no internet: fail calls to wordpress.org at once
// instead of waiting for their timeouts (calls to the site itself pass).
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
$salts
PHP
  echo "wp-site: $host ready: database on $sock, static root $web, config $config"
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *) usage ;;
esac
