#!/usr/bin/env bash
# Runs the SPA example: fe-php in the foreground, serving dist/ and the
# PHP API in api/ (embedded PHP; the recipe needs no PHP-FPM). Ctrl-C stops
# it.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${FE_PHP:-$here/../../bin/fe-php}

"$bin" check -c "$here/fe-php.toml"
echo "spa: http://127.0.0.1:8080/ (static index.html), /settings/profile (a deep link: index.html too), /api/status and /api/notes (embedded JSON), /assets/app.js (static)"
exec "$bin" run -c "$here/fe-php.toml"
