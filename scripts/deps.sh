#!/usr/bin/env bash
# Installs the Debian packages fe-php's tests need, when some are missing.
# Idempotent and quick when everything is there.
set -euo pipefail

# php8.2-* extensions: what WordPress needs of the PHP-FPM side (the ZTS
# build has them compiled in). wordpress, mariadb-server, chromium: the
# end-to-end tests (tests/integration/wordpress*_test.go).
packages=(ca-certificates curl php8.2-fpm php8.2-cli libphp8.2-embed
  php8.2-mysql php8.2-curl php8.2-gd php8.2-mbstring php8.2-xml php8.2-zip php8.2-intl
  wordpress wordpress-theme-twentytwentythree mariadb-server chromium)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing Debian packages: ${missing[*]} (run as root, or install them)" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
