#!/usr/bin/env bash
# Installs the Debian packages fe-php's tests need, when some are missing.
# Idempotent and quick when everything is there.
set -euo pipefail

# base: what fe-php, its demo and most tests need. The rest is for the
# end-to-end tests (tests/integration/wordpress*_test.go) and bench/:
# WordPress, Adminer, DokuWiki, MariaDB, Redis, Chromium, and the PHP-FPM
# extensions those apps need
# (the ZTS build has them as shared modules enabled in its conf.d;
# tests/integration/php_parity_test.go checks that it loads every extension
# this FPM loads), and prometheus, whose promtool checks the /metrics output
# (tests/integration/admin_test.go). The end-to-end set also generates
# the locales tests/integration/php_locale_test.go sets (de_DE, fr_FR and
# en_US, UTF-8).
#
#   deps.sh         everything the tests need
#   deps.sh base    only the base (make demo)
base=(ca-certificates curl php8.2-fpm php8.2-cli libphp8.2-embed)
e2e=(php8.2-mysql php8.2-curl php8.2-gd php8.2-mbstring php8.2-xml php8.2-zip php8.2-intl
  wordpress wordpress-theme-twentytwentythree mariadb-server chromium
  adminer dokuwiki redis-server php8.2-redis prometheus locales)
locales=(de_DE fr_FR en_US)
case "${1:-all}" in
  base) packages=("${base[@]}") ;;
  all) packages=("${base[@]}" "${e2e[@]}") ;;
  *) echo "usage: $0 [base|all]" >&2; exit 2 ;;
esac

# need_root WHAT HOW: go on as root; otherwise say what is missing and how
# to get it, and fail.
need_root() {
  [ "$(id -u)" -eq 0 ] && return 0
  echo "deps: missing $1 (run as root, or $2)" >&2
  exit 1
}

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  need_root "Debian packages: ${missing[*]}" "install them"
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The locales go into /etc/locale.gen, so that locale-gen (run again when
# the locales package is upgraded) keeps them.
if [ "${1:-all}" = all ]; then
  have=$(locale -a)
  gen=()
  for l in "${locales[@]}"; do
    grep -qx "$l.utf8" <<<"$have" || gen+=("$l.UTF-8")
  done
  if [ ${#gen[@]} -gt 0 ]; then
    need_root "locales ${gen[*]}" "enable them in /etc/locale.gen and run locale-gen"
    echo "deps: generating the locales ${gen[*]}"
    for l in "${gen[@]}"; do
      grep -qx "$l UTF-8" /etc/locale.gen 2>/dev/null || echo "$l UTF-8" >>/etc/locale.gen
    done
    locale-gen >/dev/null
  fi
fi
