#!/usr/bin/env bash
# Build a ZTS (thread-safe) PHP 8.2 with the embed SAPI (libphp.so) and a CLI of
# the same build, from Debian bookworm's php8.2 source package, and install it
# under $PHP_PREFIX (default /usr/local/php-zts-embed).
#
# Runs as root on Debian 12. Idempotent: when the stamp file in the prefix
# matches this recipe and flags, it exits at once without touching apt or the
# network.
#
# Environment:
#   PHP_PREFIX        install prefix (default /usr/local/php-zts-embed)
#   PHP_BUILD_NICE=1  run the heavy steps (configure, make) under `nice -n 19`
#   PHP_BUILD_FORCE=1 rebuild even when the stamp matches
#   PHP_BUILD_DIR     work dir (default /var/cache/fe-php/php-build)
#   PHP_BUILD_JOBS    make -j value (default: nproc)
set -euo pipefail

# Bump when the recipe changes in a way the configure flags don't show
# (patches, install steps, ...): it forces a rebuild everywhere.
RECIPE_VERSION=1
# Debian source version this recipe was verified with. Used only to name the
# expected build in logs; the version actually built is whatever bookworm main
# serves (the highest one apt-cache showsrc lists) and is recorded in the stamp.
PHP_DEB_VERSION_PINNED="8.2.32-1~deb12u1"

PREFIX="${PHP_PREFIX:-/usr/local/php-zts-embed}"
PREFIX="${PREFIX%/}"
WORK="${PHP_BUILD_DIR:-/var/cache/fe-php/php-build}"
STAMP_FILE="$PREFIX/.fe-php-build-stamp"
LOG="$WORK/build.log"

CONFIGURE_FLAGS=(
  "--prefix=$PREFIX"
  "--libdir=$PREFIX/lib"
  "--with-config-file-path=$PREFIX/etc"
  "--with-config-file-scan-dir=$PREFIX/etc/conf.d"
  --enable-embed=shared
  --enable-zts
  --disable-zend-signals
  --enable-zend-max-execution-timers
  --disable-cgi
  --disable-phpdbg
  --without-pear
  --with-external-pcre
  --with-system-tzdata
  --enable-mbstring
  --with-sqlite3
  --with-pdo-sqlite
  --enable-mysqlnd
  --with-mysqli
  --with-pdo-mysql
  --with-curl
  --with-openssl
  --with-zlib
  --enable-intl
  --enable-gd
  --with-external-gd
  --with-zip
  --with-sodium
  --with-password-argon2
  --enable-bcmath
  --enable-exif
  --enable-sockets
  # PHP's default is "-g -O2"; the install strips the debug info anyway, and
  # generating it makes the (long) compile slower.
  CFLAGS=-O2
  CXXFLAGS=-O2
  # Enabled by default in 8.2 (so not passed): cli, opcache, ctype, fileinfo,
  # tokenizer, dom, xml, simplexml, xmlreader, xmlwriter, session, filter,
  # iconv, pdo, phar, posix. They are checked after the build instead.
)

BUILD_DEPS=(
  bison re2c libcurl4-openssl-dev libonig-dev libzip-dev libsodium-dev libargon2-dev
  libgd-dev libwebp-dev libsqlite3-dev libssl-dev libxml2-dev zlib1g-dev libicu-dev
  libpng-dev libjpeg-dev libfreetype-dev libpcre2-dev pkg-config autoconf libtool
  build-essential dpkg-dev patch
)

# Modules that must show up in `php -m`.
REQUIRED_MODULES=(
  mysqli mysqlnd pdo_mysql pdo_sqlite sqlite3 gd intl mbstring curl openssl zlib zip
  sodium bcmath exif sockets ctype fileinfo tokenizer dom xml simplexml xmlreader
  xmlwriter session filter iconv json pcre
)

log() { printf 'php-zts-embed: %s\n' "$*"; }
die() { printf 'php-zts-embed: ERROR: %s\n' "$*" >&2; exit 1; }

FLAGS_HASH="$(printf '%s\n' "${CONFIGURE_FLAGS[@]}" | sha256sum | cut -c1-12)"
# fe-php's patches to PHP (scripts/php-patches/*.patch, applied in name
# order to a fresh build tree); their content is part of the stamp.
PATCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/php-patches"
PATCHES=("$PATCH_DIR"/*.patch)
[[ -e "${PATCHES[0]}" ]] || PATCHES=()
PATCH_HASH="$(cat /dev/null "${PATCHES[@]}" | sha256sum | cut -c1-12)"
# The stamp is "r<recipe>-f<flags hash>-v<debian version>". The fast path
# compares only the recipe and flags part (no apt/network needed); the Debian
# version that was actually built is recorded after it.
STAMP_KEY="r${RECIPE_VERSION}-f${FLAGS_HASH}-p${PATCH_HASH}"

# ---------------------------------------------------------------- fast path
if [[ "${PHP_BUILD_FORCE:-0}" != 1 && -f "$STAMP_FILE" && -f "$PREFIX/lib/libphp.so" ]]; then
  current="$(head -n1 "$STAMP_FILE" 2>/dev/null || true)"
  if [[ "$current" == "${STAMP_KEY}-v"* ]]; then
    log "up to date ($current)"
    exit 0
  fi
  log "stamp '$current' differs from '${STAMP_KEY}-v*': rebuilding"
fi

[[ "$(id -u)" == 0 ]] || die "must run as root"

NICE=()
if [[ "${PHP_BUILD_NICE:-0}" == 1 ]]; then
  NICE=(nice -n 19)
fi
JOBS="${PHP_BUILD_JOBS:-$(nproc)}"

mkdir -p "$WORK"
: >"$LOG"

# Run a command with its output going to the log; on failure print the log's
# tail and stop.
run_logged() {
  local what="$1"; shift
  printf '\n===== %s: %s\n' "$what" "$*" >>"$LOG"
  if ! "$@" >>"$LOG" 2>&1; then
    printf 'php-zts-embed: ERROR: %s failed; last lines of %s:\n' "$what" "$LOG" >&2
    tail -n 60 "$LOG" >&2
    exit 1
  fi
}

# ---------------------------------------------------------- deb-src entry
has_bookworm_main_src() {
  apt-get indextargets --no-release-info --format '$(TARGET_OF)|$(RELEASE)|$(COMPONENT)' 2>/dev/null |
    grep -x 'deb-src|bookworm|main' >/dev/null  # not -q: an early exit would SIGPIPE apt under pipefail
}

debian_mirror_uri() {
  local uri=""
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    # deb822 paragraphs: first stanza with Types containing "deb" and Suites
    # containing "bookworm" (as a word).
    uri="$(awk -v RS='' '
      {
        types=""; suites=""; uris="";
        n = split($0, lines, "\n");
        for (i = 1; i <= n; i++) {
          l = lines[i];
          if (l ~ /^[Tt]ypes:/)  { sub(/^[^:]*:[ \t]*/, "", l); types = " " l " " }
          if (l ~ /^[Ss]uites:/) { sub(/^[^:]*:[ \t]*/, "", l); suites = " " l " " }
          if (l ~ /^URIs:/)      { sub(/^[^:]*:[ \t]*/, "", l); uris = l }
        }
        if (types ~ / deb / && suites ~ / bookworm / && uris != "") {
          split(uris, u, /[ \t]+/); print u[1]; exit
        }
      }' /etc/apt/sources.list.d/debian.sources)"
  fi
  if [[ -z "$uri" ]]; then
    uri="$(apt-get indextargets --no-release-info --format '$(TARGET_OF)|$(RELEASE)|$(COMPONENT)|$(REPO_URI)' 2>/dev/null |
      awk -F'|' '$1=="deb" && $2=="bookworm" && $3=="main" && !done {print $4; done=1}')"
  fi
  printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}

if has_bookworm_main_src; then
  log "deb-src for bookworm main already configured"
else
  uri="$(debian_mirror_uri)"
  uri="${uri%/}"
  log "adding deb-src for bookworm main ($uri) in /etc/apt/sources.list.d/fe-php-src.sources"
  cat >/etc/apt/sources.list.d/fe-php-src.sources <<EOF
# Added by fe-php scripts/build-php.sh: Debian sources, to build a ZTS embed PHP.
Types: deb-src
URIs: $uri
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
fi

export DEBIAN_FRONTEND=noninteractive
log "apt-get update"
run_logged "apt-get update" apt-get update
log "installing build dependencies"
run_logged "apt-get install" apt-get install -y --no-install-recommends \
  -o DPkg::Lock::Timeout=600 "${BUILD_DEPS[@]}"

# ------------------------------------------------------- source package
DEB_VERSION=""
while read -r v; do
  [[ -n "$v" ]] || continue
  if [[ -z "$DEB_VERSION" ]] || dpkg --compare-versions "$v" gt "$DEB_VERSION"; then
    DEB_VERSION="$v"
  fi
done < <(apt-cache showsrc php8.2 2>/dev/null | awk '/^Package: /{p=($2=="php8.2")} p && /^Version: /{print $2}')
if [[ -z "$DEB_VERSION" ]]; then
  log "apt-cache showsrc php8.2 found nothing; falling back to pinned $PHP_DEB_VERSION_PINNED"
  DEB_VERSION="$PHP_DEB_VERSION_PINNED"
elif [[ "$DEB_VERSION" != "$PHP_DEB_VERSION_PINNED" ]]; then
  log "note: apt serves php8.2 $DEB_VERSION (recipe verified with $PHP_DEB_VERSION_PINNED)"
fi
STAMP="${STAMP_KEY}-v${DEB_VERSION}"
log "building php8.2 $DEB_VERSION (stamp $STAMP)"

upstream="${DEB_VERSION#*:}"
upstream="${upstream%-*}"
SRC_PARENT="$WORK/src/$DEB_VERSION"
SRC_DIR="$SRC_PARENT/php8.2-$upstream"
if [[ -f "$SRC_DIR/.fe-php-src-ok" ]]; then
  log "reusing source in $SRC_DIR"
else
  log "fetching source: apt-get source php8.2=$DEB_VERSION"
  rm -rf "$SRC_PARENT"
  mkdir -p "$SRC_PARENT"
  (cd "$SRC_PARENT" && run_logged "apt-get source" apt-get source --only-source "php8.2=$DEB_VERSION")
  [[ -f "$SRC_DIR/buildconf" ]] || die "unexpected source layout: $SRC_DIR/buildconf missing"
  touch "$SRC_DIR/.fe-php-src-ok"
  # Older source versions are of no further use.
  find "$WORK/src" -mindepth 1 -maxdepth 1 -type d ! -name "$DEB_VERSION" -exec rm -rf {} +
fi

# ------------------------------------------------------------ build tree
BUILD_DIR="$WORK/build"
if [[ -f "$BUILD_DIR/.fe-php-build-key" && "$(cat "$BUILD_DIR/.fe-php-build-key")" == "$STAMP" ]]; then
  log "reusing build tree $BUILD_DIR (incremental make)"
else
  log "fresh build tree $BUILD_DIR"
  rm -rf "$BUILD_DIR"
  cp -a "$SRC_DIR" "$BUILD_DIR"
  rm -f "$BUILD_DIR/.fe-php-src-ok"
  for p in "${PATCHES[@]}"; do
    log "applying $(basename "$p")"
    run_logged "patch $(basename "$p")" patch -d "$BUILD_DIR" -p1 --forward --batch -i "$p"
  done
fi
cd "$BUILD_DIR"

if [[ ! -f .fe-php-configured ]]; then
  log "buildconf"
  run_logged "buildconf" ./buildconf --force
  log "configure (log: $LOG)"
  start=$SECONDS
  run_logged "configure" "${NICE[@]}" ./configure "${CONFIGURE_FLAGS[@]}"
  log "configure done in $((SECONDS - start)) s"
  printf '%s\n' "$STAMP" >.fe-php-build-key
  touch .fe-php-configured
fi

log "make -j$JOBS${NICE:+ (niced)} (log: $LOG; several minutes)"
start=$SECONDS
run_logged "make" "${NICE[@]}" make -j"$JOBS"
log "make done in $((SECONDS - start)) s"

# ---------------------------------------------------------------- install
# Remove what a previous install put there (only PHP's own paths, so a shared
# prefix such as /usr/local stays safe) so no stale extensions or headers linger.
rm -f "$STAMP_FILE"
rm -rf "$PREFIX/lib/php" "$PREFIX/include/php" "$PREFIX/php" "$PREFIX/lib/libphp.so" \
  "$PREFIX/bin/php" "$PREFIX/bin/php-config" "$PREFIX/bin/phpize"
mkdir -p "$PREFIX"
log "make install -> $PREFIX"
run_logged "make install" make install
mkdir -p "$PREFIX/etc/conf.d"

[[ -f "$PREFIX/lib/libphp.so" ]] || die "$PREFIX/lib/libphp.so was not installed"
strip --strip-debug "$PREFIX/lib/libphp.so"
strip --strip-debug "$PREFIX/bin/php" || true
find "$PREFIX/lib/php/extensions" -name '*.so' -exec strip --strip-debug {} + 2>/dev/null || true

# ----------------------------------------------------------------- verify
PHP="$PREFIX/bin/php"
[[ -x "$PHP" ]] || die "$PHP missing"
zts="$("$PHP" -n -r 'echo PHP_ZTS, PHP_EOL;')"
[[ "$zts" == 1 ]] || die "PHP_ZTS is '$zts', want 1"
opc="$("$PHP" -n -d zend_extension=opcache -r 'var_dump(function_exists("opcache_get_status"));')"
[[ "$opc" == "bool(true)" ]] || die "opcache did not load: $opc"
modules="$("$PHP" -n -m)"
missing=()
for m in "${REQUIRED_MODULES[@]}"; do
  grep -qix "$m" <<<"$modules" || missing+=("$m")
done
((${#missing[@]} == 0)) || die "modules missing from php -m: ${missing[*]}"
log "verified: ZTS, opcache, modules ($("$PHP" -n -r 'echo PHP_VERSION;'))"

printf '%s\n' "$STAMP" >"$STAMP_FILE"
log "installed $STAMP in $PREFIX"
