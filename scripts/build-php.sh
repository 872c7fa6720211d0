#!/usr/bin/env bash
# Build a ZTS (thread-safe) PHP 8.2 with the embed SAPI (libphp.so) and a CLI of
# the same build, from Debian bookworm's php8.2 source package, configured the
# way Debian configures its own PHP (debian/rules), and install it under
# $PHP_PREFIX (default /usr/local/php-zts-embed):
#
#   lib/libphp.so                 the embed SAPI fe-php loads
#   bin/php, php-config, phpize   a CLI of the same build, and the tools to build
#                                 extensions against it
#   lib/extensions/no-debug-zts-20220829/
#                                 every extension Debian builds as a shared module
#                                 (except those listed under "left out" below), and
#                                 the PECL extensions redis, apcu, igbinary, imagick
#                                 built from Debian's source packages
#   etc/php.ini                   Debian's production php.ini (what php8.2-fpm uses)
#   etc/mods-available/X.ini      one ini per extension, as Debian's packages ship them
#   etc/conf.d/NN-X.ini           links to them, with Debian's priority prefixes: every
#                                 module is enabled, as installing Debian's package
#                                 enables it (delete a link to disable a module, like
#                                 phpdismod; a rebuild puts it back)
#
# PHP reads etc/php.ini and scans etc/conf.d by default (both paths are compiled
# in). A rebuild rewrites etc/php.ini, etc/mods-available and etc/conf.d: put
# local settings in fe-php's configuration (php.ini_file, [php.ini]), not there.
#
# Runs as root on Debian 12. Idempotent: when the stamp file in the prefix
# matches this recipe (configure flags, patches, PECL list, ini files), it exits
# at once without touching apt or the network.
#
# Environment:
#   PHP_PREFIX        install prefix (default /usr/local/php-zts-embed)
#   PHP_BUILD_NICE=1  run the heavy steps (configure, make) under `nice -n 19`
#   PHP_BUILD_FORCE=1 rebuild even when the stamp matches
#   PHP_BUILD_DIR     work dir (default /var/cache/fe-php/php-build)
#   PHP_BUILD_JOBS    make -j value (default: nproc)
set -euo pipefail

# Bump when the recipe changes in a way the hashed parts below don't show
# (install steps, verification, ...): it forces a rebuild everywhere.
RECIPE_VERSION=3
# Debian source version this recipe was verified with. Used only to name the
# expected build in logs, and when apt lists no source at all; the version
# actually built is the one Debian's php8.2 is installed at (security fixes
# included, from bookworm-security), else the highest one the mirror
# serves, and is recorded in the stamp.
PHP_DEB_VERSION_PINNED="8.2.32-1~deb12u1"

PREFIX="${PHP_PREFIX:-/usr/local/php-zts-embed}"
PREFIX="${PREFIX%/}"
WORK="${PHP_BUILD_DIR:-/var/cache/fe-php/php-build}"
STAMP_FILE="$PREFIX/.fe-php-build-stamp"
# Source versions apt listed but the mirror did not serve: not tried again.
UNAVAILABLE_FILE="$PREFIX/.fe-php-src-unavailable"
LOG="$WORK/build.log"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# The ini files installed in $PREFIX/etc/mods-available (see php-conf/README.md).
CONF_DIR="$SCRIPT_DIR/php-conf"

# Debian's build flags (debian/rules: DEB_BUILD_MAINT_OPTIONS = hardening=+all
# optimize=-lto, as dpkg-buildflags gives them on bookworm, plus
# DEB_CFLAGS_MAINT_APPEND's -fsigned-char -fno-strict-aliasing
# -DOPENSSL_SUPPRESS_DEPRECATED and DEB_LDFLAGS_MAINT_APPEND's -Wl,--as-needed).
# Left out: -g (the install strips debug info anyway, and generating it makes
# the compile slower) and the warning-only -Wall -pedantic.
# Added: -fno-semantic-interposition and -Wl,-Bsymbolic-functions. Debian's
# php-fpm is one executable, where PHP's functions call each other directly
# and inline; in a shared libphp each call between its exported functions
# (most of the engine's API) goes through the PLT and cannot be inlined,
# because another library could interpose them. Nothing does, and these two
# flags let the compiler and the linker assume so (CPython's optimized
# builds use the first, Debian links its libpython with the second).
BUILD_CFLAGS="-O2 -fstack-protector-strong -Wformat -Werror=format-security -fsigned-char -fno-strict-aliasing -fno-semantic-interposition"
BUILD_CPPFLAGS="-Wdate-time -D_FORTIFY_SOURCE=2 -DOPENSSL_SUPPRESS_DEPRECATED"
BUILD_LDFLAGS="-Wl,-z,relro -Wl,-z,now -Wl,--as-needed -Wl,-Bsymbolic-functions"

# The MySQL socket Debian compiles in (debian/rules.d/ext-mysql.mk,
# --with-mysql-sock): the default of mysqli.default_socket and
# pdo_mysql.default_socket, where Debian's MariaDB/MySQL listen, so that
# DB_HOST=localhost works as under Debian's PHP.
MYSQL_SOCK=/var/run/mysqld/mysqld.sock

CONFIGURE_FLAGS=(
  # fe-php's own layout (Debian's is /usr with /etc/php/8.2/<sapi>/): the
  # php.ini and the ini scan directory live in the prefix.
  "--prefix=$PREFIX"
  # Without it a Debian patch puts the library at lib/php/libphp.so.
  "--libdir=$PREFIX/lib"
  "--with-config-file-path=$PREFIX/etc"
  "--with-config-file-scan-dir=$PREFIX/etc/conf.d"
  # SAPIs: embed for fe-php, and a CLI of the same build (php -m, the PECL
  # builds, tests). Debian's embed_config/fpm_config build each SAPI the same way.
  --enable-embed=shared
  --enable-cli
  --disable-cgi
  --disable-phpdbg
  # fe-php's: thread safety, and per-thread POSIX timers instead of SIGPROF,
  # which Go needs (see docs/ and scripts/php-patches/).
  --enable-zts
  --disable-zend-signals
  --enable-zend-max-execution-timers

  # Debian's COMMON_CONFIG (debian/rules), the part that changes behaviour or
  # the build. --disable-all: nothing is compiled in unless named here; these
  # are exactly the modules Debian's FPM has built in (Core date filter hash
  # json libxml openssl pcre random Reflection session sodium SPL standard
  # zlib). Debian's --disable-static is left out: PHP's configure ignores it
  # when it builds a CLI (whose link takes the static .o files), so libtool
  # still compiles each file twice, with --with-pic both times.
  # Not taken: --with-layout=GNU, --sysconfdir, --localstatedir, --datadir,
  # --program-suffix (install paths only), --enable-dtrace (needs
  # systemtap-sdt-dev; Debian's FPM reports it "available, disabled").
  --disable-all
  --disable-debug
  --disable-rpath
  --with-pic
  --without-pear
  --enable-filter
  --with-openssl
  --with-password-argon2=/usr
  --with-external-pcre
  --with-mhash=/usr
  --with-libxml
  --enable-session
  --with-sodium
  --with-system-tzdata
  --with-zlib=/usr
  --with-zlib-dir=/usr

  # Every extension Debian's php8.2 source builds, shared as Debian builds
  # them, with Debian's flags (debian/rules.d/ext-*.mk), by Debian package.
  # Each has an ini in php-conf/mods-available. Left out (no ini either):
  #   imap (php8.2-imap): UW c-client (libc-client2007e-dev, 24 packages with
  #     Kerberos); c-client keeps process-wide state, unsafe in a threaded
  #     server; the extension left PHP in 8.4.
  #   snmp (php8.2-snmp): net-snmp (libsnmp-dev, 18 packages); its MIB
  #     library has process-wide state and reads the MIBs at module start-up.
  #   pdo_firebird (php8.2-interbase), pdo_dblib (php8.2-sybase), odbc and
  #     pdo_odbc (php8.2-odbc): client libraries for Firebird, FreeTDS and
  #     unixODBC that web hosts rarely have.
  #   enchant (php8.2-enchant): libenchant-2-dev brings GLib's development
  #     stack (17 packages) for a spell-checker binding.
  # php8.2-bcmath
  --enable-bcmath=shared
  # php8.2-bz2
  --with-bz2=shared,/usr
  # php8.2-common
  --enable-calendar=shared
  --enable-ctype=shared
  --enable-exif=shared
  --enable-fileinfo=shared
  --with-ffi=shared
  --enable-ftp=shared
  --with-openssl-dir=/usr
  --with-gettext=shared,/usr
  --with-iconv=shared
  --enable-pdo=shared
  --enable-phar=shared
  --enable-posix=shared
  --enable-shmop=shared
  --enable-sockets=shared
  --enable-sysvmsg=shared
  --enable-sysvsem=shared
  --enable-sysvshm=shared
  --enable-tokenizer=shared
  # php8.2-curl
  --with-curl=shared
  # php8.2-dba
  --enable-dba=shared
  --with-db4=/usr
  --without-gdbm
  --with-qdbm=/usr
  --with-lmdb=/usr
  --enable-inifile
  --enable-flatfile
  # php8.2-gd (Debian: --enable-gd=shared,/usr)
  --enable-gd=shared
  --with-external-gd
  # php8.2-gmp
  --with-gmp=shared
  # php8.2-intl
  --enable-intl=shared
  # php8.2-ldap
  --with-ldap=shared,/usr
  --with-ldap-sasl
  # php8.2-mbstring (Debian's --enable-mbregex-backtrack no longer exists)
  --enable-mbstring=shared
  --enable-mbregex
  # php8.2-mysql
  --enable-mysqlnd=shared
  --enable-mysqlnd-compression-support
  --with-mysqli=shared,mysqlnd
  --with-pdo-mysql=shared,mysqlnd
  "--with-mysql-sock=$MYSQL_SOCK"
  # php8.2-opcache (always a shared zend_extension in 8.2; Debian's
  # --enable-opcache-file no longer exists, --enable-huge-code-pages is the
  # default)
  --enable-opcache
  # php8.2-pgsql
  --with-pgsql=shared,/usr
  --with-pdo-pgsql=shared,/usr
  # php8.2-pspell
  --with-pspell=shared,/usr
  # php8.2-readline (Debian builds it on libedit)
  --with-libedit=shared
  # php8.2-soap
  --enable-soap=shared
  # php8.2-sqlite3
  --with-sqlite3=shared
  --with-pdo-sqlite=shared
  # php8.2-tidy
  --with-tidy=shared,/usr
  # php8.2-xml
  --enable-dom=shared
  --enable-simplexml=shared
  --enable-xml=shared
  --enable-xmlreader=shared
  --enable-xmlwriter=shared
  --with-xsl=shared
  # php8.2-zip
  --with-zip=shared

  "CFLAGS=$BUILD_CFLAGS"
  "CXXFLAGS=$BUILD_CFLAGS"
  "CPPFLAGS=$BUILD_CPPFLAGS"
  "LDFLAGS=$BUILD_LDFLAGS"
)

# PECL extensions, built from Debian's source packages with this build's
# phpize, in this order: "source-package extension [configure flags]". The
# flags are Debian's (debian/rules: PECL_CONFIGURE_MAINT_APPEND). Order
# matters: igbinary's configure finds APCu's installed headers and adds its
# APCu serializer (Debian builds it against php-apcu-all-dev), and redis's
# finds igbinary's. Their inis (php-conf/mods-available) are Debian's; with no
# "; priority=" line Debian's priority is 20, so 20-igbinary.ini loads before
# 20-redis.ini, which needs it.
# Left out: memcached (php-memcached 3.2.0+2.2.0-4: its source files are
# not on the Debian mirror, apt-get source gets 404; msgpack, which only it
# needs here, is left out with it).
PECL=(
  "php-apcu apcu"
  "php-igbinary igbinary"
  "php-redis redis --enable-redis-igbinary --enable-redis-lzf --without-liblzf --enable-redis-lz4 --with-liblz4 --enable-redis-zstd --with-libzstd"
  "php-imagick imagick"
)

# How Debian makes php8.2-fpm's php.ini from php.ini-production (debian/rules,
# override_dh_install-arch; php8.2-fpm's postinst copies the result to
# /etc/php/8.2/fpm/php.ini). @PCNTL_FUNCTIONS@ is filled in from the source as
# debian/rules does (empty for 8.2, whose php_pcntl.h no longer lists them).
PHP_INI_SED=(
  -e '/session.gc_probability =/ s/1/0/g;'
  -e '/disable_functions =/ s/$/ @PCNTL_FUNCTIONS@/g;'
  -e '/expose_php =/ s/On/Off/g;'
)

BUILD_DEPS=(
  # the build itself, and phpize (Debian's phpize copies /usr/bin/shtool)
  bison re2c pkg-config autoconf libtool build-essential dpkg-dev patch shtool
  # compiled in
  libssl-dev libargon2-dev libpcre2-dev libxml2-dev libsodium-dev zlib1g-dev
  # the shared extensions
  libbz2-dev libcurl4-openssl-dev libdb-dev libqdbm-dev liblmdb-dev libffi-dev
  libgd-dev libwebp-dev libpng-dev libjpeg-dev libfreetype-dev libgmp-dev libicu-dev
  libldap2-dev libsasl2-dev libonig-dev libpq-dev libpspell-dev libedit-dev
  libsqlite3-dev libtidy-dev libxslt1-dev libzip-dev
  # PECL: redis (lz4, zstd), imagick
  liblz4-dev libzstd-dev libmagickwand-6.q16-dev
)

# Modules that must be loaded by `php` with the installed php.ini and conf.d:
# all that Debian's php-fpm8.2 loads with php8.2-mysql, -curl, -gd, -mbstring,
# -xml, -zip and -intl installed (but its SAPI's cgi-fcgi), and the PECL ones.
# The build also checks that every conf.d ini's module loads.
REQUIRED_MODULES=(
  calendar Core ctype curl date dom exif FFI fileinfo filter ftp gd gettext hash iconv
  intl json libxml mbstring mysqli mysqlnd openssl pcre PDO pdo_mysql Phar posix random
  readline Reflection session shmop SimpleXML sockets sodium SPL standard sysvmsg sysvsem
  sysvshm tokenizer xml xmlreader xmlwriter xsl zip zlib
  apcu igbinary redis imagick
)
# (OPcache is checked on its own below: fe-php loads it, conf.d does not.)

log() { printf 'php-zts-embed: %s\n' "$*"; }
die() { printf 'php-zts-embed: ERROR: %s\n' "$*" >&2; exit 1; }
hash12() { sha256sum | cut -c1-12; }

# ------------------------------------------------------------------ stamp
# The stamp is "r<recipe>-f<flags>-p<patches>-e<PECL>-c<ini files>-v<debian
# version>", each a hash of that part of the recipe. The fast path compares all
# but the Debian version (no apt/network needed); the version that was
# actually built is recorded after it.
FLAGS_HASH="$(printf '%s\n' "${CONFIGURE_FLAGS[@]}" | hash12)"
# fe-php's patches to PHP (scripts/php-patches/*.patch, applied in name
# order to a fresh build tree); their content is part of the stamp.
PATCH_DIR="$SCRIPT_DIR/php-patches"
PATCHES=("$PATCH_DIR"/*.patch)
[[ -e "${PATCHES[0]}" ]] || PATCHES=()
PATCH_HASH="$(cat /dev/null "${PATCHES[@]}" | hash12)"
# A PECL extension's patches: scripts/php-patches/EXT/*.patch, applied in
# name order to its source (the directory with its config.m4).
pecl_patches() {
  local ps=("$PATCH_DIR/$1"/*.patch)
  [[ -e "${ps[0]}" ]] && printf '%s\n' "${ps[@]}"
  return 0
}
PECL_HASH="$( (printf '%s\n' "${PECL[@]}"
  for entry in "${PECL[@]}"; do
    read -r _ ext _ <<<"$entry"
    pecl_patches "$ext" | while read -r p; do printf '%s\n' "$(basename "$p")"; cat "$p"; done
  done) | hash12)"
# The installed ini files: their names and content, and how php.ini is made.
CONF_HASH="$( (printf '%s\n' "${PHP_INI_SED[@]}"
  cd "$CONF_DIR" && find . -type f -name '*.ini' | LC_ALL=C sort | while read -r f; do
    printf '%s\n' "$f"; cat "$f"; done) | hash12)"
STAMP_KEY="r${RECIPE_VERSION}-f${FLAGS_HASH}-p${PATCH_HASH}-e${PECL_HASH}-c${CONF_HASH}"

# distro_version: the version Debian's PHP (php8.2-common) is installed at,
# "" if it is not installed.
distro_version() {
  { dpkg-query -W -f='${db:Status-Abbrev}|${Version}\n' php8.2-common 2>/dev/null || true; } |
    awk -F'|' '$1 ~ /^ii/ {print $2}'
}

# src_versions PACKAGE: the versions of source package PACKAGE in apt's
# lists (no network), highest first in dpkg's order.
src_versions() {
  local v i sorted=()
  while read -r v; do
    [[ -n "$v" ]] || continue
    for ((i = 0; i < ${#sorted[@]}; i++)); do
      [[ "$v" == "${sorted[i]}" ]] && continue 2
      dpkg --compare-versions "$v" gt "${sorted[i]}" && break
    done
    sorted=("${sorted[@]:0:i}" "$v" "${sorted[@]:i}")
  done < <(apt-cache showsrc "$1" 2>/dev/null | awk -v p="$1" '/^Package: /{ok=($2==p)} ok && /^Version: /{print $2}')
  ((${#sorted[@]} == 0)) || printf '%s\n' "${sorted[@]}"
}

# src_version PACKAGE: the highest of them ("" if none).
src_version() {
  local vs
  vs="$(src_versions "$1")"
  printf '%s\n' "${vs%%$'\n'*}"
}

# src_known PACKAGE VERSION: apt's lists have that source version.
src_known() {
  src_versions "$1" | grep -Fx "$2" >/dev/null  # not -q: SIGPIPE under pipefail
}

# has_src SUITE: apt has a deb-src entry for SUITE's main.
has_src() { # has_src SUITE
  apt-get indextargets --no-release-info --format '$(TARGET_OF)|$(RELEASE)|$(COMPONENT)' 2>/dev/null |
    grep -x "deb-src|$1|main" >/dev/null  # not -q: an early exit would SIGPIPE apt under pipefail
}

# ---------------------------------------------------------------- fast path
if [[ "${PHP_BUILD_FORCE:-0}" != 1 && -f "$STAMP_FILE" && -f "$PREFIX/lib/libphp.so" ]]; then
  current="$(head -n1 "$STAMP_FILE" 2>/dev/null || true)"
  # The distribution's PHP, if installed: after a security update of it
  # (apt upgrade) the embedded PHP follows, once apt knows its source.
  distro="$(distro_version)"
  if [[ "$current" == "${STAMP_KEY}-v"* ]]; then
    # Up to date unless apt may have that release's source: its list
    # says so, or bookworm-security's sources are not configured yet (the
    # build below adds them); and not if the mirror refused it before.
    if [[ -z "$distro" || "$current" == *"-v$distro" ]] ||
      grep -Fx "$distro" "$UNAVAILABLE_FILE" >/dev/null 2>&1 ||
      { has_src bookworm-security && ! src_known php8.2 "$distro"; }; then
      log "up to date ($current)"
      exit 0
    fi
    log "Debian's php8.2 is at $distro, the embedded one at ${current##*-v}: rebuilding"
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
T_START=$SECONDS

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

# apply_patches DIR LABEL PATCH...: applies each PATCH (-p1) to DIR in turn,
# logging it as LABEL followed by its file name.
apply_patches() {
  local dir=$1 label=$2 p
  shift 2
  for p in "$@"; do
    log "applying $label$(basename "$p")"
    run_logged "patch $label$(basename "$p")" patch -d "$dir" -p1 --forward --batch -i "$p"
  done
}

# --------------------------------------------------------- deb-src entries
# Sources for bookworm main and bookworm-security: PHP's security releases
# reach Debian 12 through bookworm-security only, and the embedded PHP must
# be the release the distribution's PHP-FPM runs, not the point release's.

# mirror_uri SUITE DEFAULT: the URI the binary packages of SUITE come from
# (DEFAULT if apt has none).
mirror_uri() {
  local uri=""
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    # deb822 paragraphs: first stanza with Types containing "deb" and Suites
    # containing SUITE (as a word).
    uri="$(awk -v RS='' -v suite="$1" '
      {
        types=""; suites=""; uris="";
        n = split($0, lines, "\n");
        for (i = 1; i <= n; i++) {
          l = lines[i];
          if (l ~ /^[Tt]ypes:/)  { sub(/^[^:]*:[ \t]*/, "", l); types = " " l " " }
          if (l ~ /^[Ss]uites:/) { sub(/^[^:]*:[ \t]*/, "", l); suites = " " l " " }
          if (l ~ /^URIs:/)      { sub(/^[^:]*:[ \t]*/, "", l); uris = l }
        }
        if (types ~ / deb / && index(suites, " " suite " ") && uris != "") {
          split(uris, u, /[ \t]+/); print u[1]; exit
        }
      }' /etc/apt/sources.list.d/debian.sources)"
  fi
  if [[ -z "$uri" ]]; then
    uri="$(apt-get indextargets --no-release-info --format '$(TARGET_OF)|$(RELEASE)|$(COMPONENT)|$(REPO_URI)' 2>/dev/null |
      awk -F'|' -v suite="$1" '$1=="deb" && $2==suite && $3=="main" && !done {print $4; done=1}')"
  fi
  uri="${uri:-$2}"
  printf '%s\n' "${uri%/}"
}

# bookworm main's sources go in fe-php-src.sources (as before), bookworm-
# security's in a file of their own, added only where apt already takes
# bookworm-security's packages from a mirror (so that it likely serves
# their sources too), and removed again if apt cannot read them: a source
# list apt fails on would break every later apt-get update of the machine.
SRC_MAIN_FILE=/etc/apt/sources.list.d/fe-php-src.sources
SRC_SECURITY_FILE=/etc/apt/sources.list.d/fe-php-src-security.sources
src_stanza() { # src_stanza URI SUITE
  printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$1" "$2"
}
if has_src bookworm; then
  log "deb-src for bookworm main already configured"
else
  uri="$(mirror_uri bookworm http://deb.debian.org/debian)"
  log "adding deb-src for bookworm main ($uri) in $SRC_MAIN_FILE"
  { echo "# Added by fe-php scripts/build-php.sh: Debian sources, to build a ZTS embed PHP."
    src_stanza "$uri" bookworm; } >"$SRC_MAIN_FILE"
fi
added_security=""
if has_src bookworm-security; then
  log "deb-src for bookworm-security main already configured"
else
  uri="$(mirror_uri bookworm-security "")"
  if [[ -n "$uri" ]]; then
    log "adding deb-src for bookworm-security main ($uri) in $SRC_SECURITY_FILE"
    { echo "# Added by fe-php scripts/build-php.sh: Debian's security sources, to build the ZTS embed PHP at the release Debian's PHP is at."
      src_stanza "$uri" bookworm-security; } >"$SRC_SECURITY_FILE"
    added_security=1
  else
    log "no bookworm-security packages configured: building from bookworm's sources only"
  fi
fi

export DEBIAN_FRONTEND=noninteractive
log "apt-get update"
if [[ -z "$added_security" ]]; then
  run_logged "apt-get update" apt-get update
elif ! apt-get update >>"$LOG" 2>&1; then
  log "WARNING: apt-get update failed with bookworm-security's sources; removing $SRC_SECURITY_FILE"
  rm -f "$SRC_SECURITY_FILE"
  run_logged "apt-get update" apt-get update
fi
log "installing build dependencies"
run_logged "apt-get install" apt-get install -y --no-install-recommends \
  -o DPkg::Lock::Timeout=600 "${BUILD_DEPS[@]}"

# ------------------------------------------------------- source package
# Candidates: the version Debian's php8.2 is installed at (so that both
# PHPs are the same release, security fixes included), then every other
# version apt lists, highest first. The first whose source the mirror
# serves is built; a mirror without bookworm-security's sources (some
# proxies carry only binaries) falls back to the point release's, loudly.
distro="$(distro_version)"
candidates=()
[[ -n "$distro" ]] && src_known php8.2 "$distro" && candidates+=("$distro")
while read -r v; do
  [[ "$v" != "$distro" ]] && candidates+=("$v")
done < <(src_versions php8.2)
((${#candidates[@]} > 0)) || candidates=("$PHP_DEB_VERSION_PINNED")

# apt_source PACKAGE VERSION DIR: Debian's source package PACKAGE at
# VERSION, unpacked in DIR (emptied first) by apt-get source, with
# DIR/.fe-php-src-ok once complete. Returns 1 if the mirror answers 404 for
# it; any other failure (the network, a full disk) ends the script, so
# that a passing problem never makes the build settle for another version.
apt_source() {
  local out
  log "fetching source: apt-get source $1=$2"
  rm -rf "$3"
  mkdir -p "$3"
  printf '\n===== apt-get source %s=%s\n' "$1" "$2" >>"$LOG"
  if ! out="$(cd "$3" && apt-get source --only-source "$1=$2" 2>&1)"; then
    printf '%s\n' "$out" >>"$LOG"
    rm -rf "$3"
    grep -F "404  Not Found" <<<"$out" >/dev/null && return 1
    die "apt-get source $1=$2 failed:
$(tail -n 20 <<<"$out")"
  fi
  printf '%s\n' "$out" >>"$LOG"
  touch "$3/.fe-php-src-ok"
}

# fetch_source VERSION: the unpacked source of php8.2 VERSION in
# $WORK/src/VERSION (kept from an earlier build if complete); 1 on a 404.
fetch_source() {
  local v="$1" up="${1#*:}"
  up="${up%-*}"
  [[ -f "$WORK/src/$v/.fe-php-src-ok" ]] && return 0
  apt_source php8.2 "$v" "$WORK/src/$v" || return 1
  [[ -f "$WORK/src/$v/php8.2-$up/buildconf" ]] || die "unexpected source layout: $WORK/src/$v/php8.2-$up/buildconf missing"
}

DEB_VERSION=""
unavailable=()
if [[ -n "$distro" && "${candidates[0]}" != "$distro" ]]; then
  # apt lists no source for the installed release at all (e.g. its
  # security sources could not be added): as good as a 404, not retried.
  log "apt lists no source for php8.2 $distro, the release Debian's PHP is at"
  unavailable+=("$distro")
fi
for v in "${candidates[@]}"; do
  if fetch_source "$v"; then
    DEB_VERSION="$v"
    break
  fi
  log "the mirror does not serve php8.2 $v's source (404; see $LOG)"
  unavailable+=("$v")
done
[[ -n "$DEB_VERSION" ]] || die "no php8.2 source could be fetched (tried ${candidates[*]})"
if [[ -n "$distro" && "$DEB_VERSION" != "$distro" ]]; then
  log "WARNING: Debian's php8.2 is at $distro, but its source is not available here: building $DEB_VERSION, which lacks the later releases' fixes. Add a deb-src entry that serves it, then run again with PHP_BUILD_FORCE=1 (this release is not tried again without it: $UNAVAILABLE_FILE)."
fi
[[ "$DEB_VERSION" == "$PHP_DEB_VERSION_PINNED" ]] ||
  log "note: building php8.2 $DEB_VERSION (recipe verified with $PHP_DEB_VERSION_PINNED)"
STAMP="${STAMP_KEY}-v${DEB_VERSION}"
log "building php8.2 $DEB_VERSION (stamp $STAMP)"

upstream="${DEB_VERSION#*:}"
upstream="${upstream%-*}"
SRC_DIR="$WORK/src/$DEB_VERSION/php8.2-$upstream"
# Older source versions are of no further use.
find "$WORK/src" -mindepth 1 -maxdepth 1 -type d ! -name "$DEB_VERSION" -exec rm -rf {} +

# pecl_fetch PKG: the unpacked source of Debian's source package PKG at the
# highest version apt has; sets ver and src_parent ($WORK/pecl-src/PKG/VER).
pecl_fetch() {
  ver="$(src_version "$1")"
  [[ -n "$ver" ]] || die "apt-cache showsrc $1 found nothing"
  src_parent="$WORK/pecl-src/$1/$ver"
  if [[ ! -f "$src_parent/.fe-php-src-ok" ]]; then
    rm -rf "$WORK/pecl-src/$1" # other versions
    apt_source "$1" "$ver" "$src_parent" || die "the mirror does not serve $1 $ver's source (404; see $LOG)"
  fi
}
# Every source is fetched before the previous install is removed, so that a
# mirror that fails leaves the installed PHP as it was.
for entry in "${PECL[@]}"; do
  read -r pkg _ <<<"$entry"
  pecl_fetch "$pkg"
done

# ------------------------------------------------------------ build tree
# The build tree depends on the flags, the patches and the source only: a
# change of the PECL list or of the ini files reuses it (make has nothing to do).
BUILD_KEY="r${RECIPE_VERSION}-f${FLAGS_HASH}-p${PATCH_HASH}-v${DEB_VERSION}"
BUILD_DIR="$WORK/build"
T_PHP=$SECONDS
if [[ -f "$BUILD_DIR/.fe-php-build-key" && "$(cat "$BUILD_DIR/.fe-php-build-key")" == "$BUILD_KEY" ]]; then
  log "reusing build tree $BUILD_DIR (incremental make)"
else
  log "fresh build tree $BUILD_DIR"
  rm -rf "$BUILD_DIR"
  cp -a "$SRC_DIR" "$BUILD_DIR"
  rm -f "$BUILD_DIR/.fe-php-src-ok"
  apply_patches "$BUILD_DIR" "" "${PATCHES[@]}"
fi
cd "$BUILD_DIR"

# debian/rules exports it, and Debian's patches to config.m4 files (0015:
# dba's db4, ldap, ...) look for libraries in /usr/lib/$DEB_HOST_MULTIARCH.
DEB_HOST_MULTIARCH="$(dpkg-architecture -qDEB_HOST_MULTIARCH)"
export DEB_HOST_MULTIARCH

if [[ ! -f .fe-php-configured ]]; then
  log "buildconf"
  run_logged "buildconf" ./buildconf --force
  log "configure (log: $LOG)"
  start=$SECONDS
  run_logged "configure" "${NICE[@]}" ./configure "${CONFIGURE_FLAGS[@]}"
  log "configure done in $((SECONDS - start)) s"
  printf '%s\n' "$BUILD_KEY" >.fe-php-build-key
  touch .fe-php-configured
fi

log "make -j$JOBS${NICE:+ (niced)} (log: $LOG; several minutes)"
start=$SECONDS
run_logged "make" "${NICE[@]}" make -j"$JOBS"
log "make done in $((SECONDS - start)) s"

# ---------------------------------------------------------------- install
# Remove what a previous install put there (only PHP's own paths, so a shared
# prefix such as /usr/local stays safe) so no stale extensions, headers or ini
# files linger.
rm -f "$STAMP_FILE"
rm -rf "$PREFIX/lib/php" "$PREFIX/include/php" "$PREFIX/php" "$PREFIX/lib/libphp.so" \
  "$PREFIX/lib/extensions" "$PREFIX/bin/php" "$PREFIX/bin/php-config" "$PREFIX/bin/phpize" \
  "$PREFIX/bin/phar" "$PREFIX/bin/phar.phar" \
  "$PREFIX/etc/php.ini" "$PREFIX/etc/conf.d" "$PREFIX/etc/mods-available"
mkdir -p "$PREFIX"
log "make install -> $PREFIX"
run_logged "make install" make install

[[ -f "$PREFIX/lib/libphp.so" ]] || die "$PREFIX/lib/libphp.so was not installed"
strip --strip-debug "$PREFIX/lib/libphp.so"
strip --strip-debug "$PREFIX/bin/php" || true

# Debian's phpize (debian/patches/0035, 0036) takes libtool's and pkg-config's
# m4 files from $prefix/share/aclocal, which is /usr/share/aclocal only for
# Debian's own prefix /usr: point it there for ours.
sed -i 's|^aclocaldir=.*|aclocaldir="/usr/share/aclocal"|' "$PREFIX/bin/phpize"
grep -qx 'aclocaldir="/usr/share/aclocal"' "$PREFIX/bin/phpize" || die "could not fix aclocaldir in $PREFIX/bin/phpize"
EXT_DIR="$("$PREFIX/bin/php-config" --extension-dir)"
T_PHP=$((SECONDS - T_PHP))

# ------------------------------------------------------------------- PECL
T_PECL=$SECONDS
PECL_BUILT=()
for entry in "${PECL[@]}"; do
  read -r pkg ext flags <<<"$entry"
  pecl_fetch "$pkg"
  # Debian's PECL source packages hold one directory per upstream version
  # (e.g. redis-4.3.0 for PHP 5, redis-5.3.7 for PHP 7 and 8); package.xml
  # names the one for current PHP, as Debian's dh-php picks it.
  pkg_dir="$(find "$src_parent" -mindepth 1 -maxdepth 1 -type d -name "$pkg-*" | head -n1)"
  [[ -f "$pkg_dir/package.xml" ]] || die "$pkg: no package.xml in $src_parent"
  name="$(sed -n 's:.*<name>\(.*\)</name>.*:\1:p' "$pkg_dir/package.xml" | head -n1)"
  release="$(sed -n '/<version>/,/<\/version>/s:.*<release>\(.*\)</release>.*:\1:p' "$pkg_dir/package.xml" | head -n1)"
  ext_src="$pkg_dir/$name-$release"
  [[ -f "$ext_src/config.m4" ]] || die "$pkg: $ext_src/config.m4 missing"

  mapfile -t ext_patches < <(pecl_patches "$ext")
  # Rebuilt when PHP's build, this entry or its patches change; else only
  # reinstalled.
  key="$BUILD_KEY $pkg=$ver $entry"
  if ((${#ext_patches[@]})); then
    key+=" patches=$(cat "${ext_patches[@]}" | hash12)"
  fi
  bdir="$WORK/pecl-build/$ext"
  if [[ -f "$bdir/.fe-php-build-key" && "$(cat "$bdir/.fe-php-build-key")" == "$key" ]]; then
    log "PECL $ext $release ($pkg $ver): reusing $bdir"
  else
    log "PECL $ext $release ($pkg $ver): phpize, configure, make"
    rm -rf "$bdir"
    mkdir -p "$WORK/pecl-build"
    cp -a "$ext_src" "$bdir"
    apply_patches "$bdir" "$ext/" "${ext_patches[@]}"
    # shellcheck disable=SC2086  # flags are words
    (cd "$bdir" &&
      run_logged "phpize $ext" "$PREFIX/bin/phpize" &&
      run_logged "configure $ext" "${NICE[@]}" ./configure --with-php-config="$PREFIX/bin/php-config" $flags \
        "CFLAGS=$BUILD_CFLAGS" "CPPFLAGS=$BUILD_CPPFLAGS" "LDFLAGS=$BUILD_LDFLAGS" &&
      run_logged "make $ext" "${NICE[@]}" make -j"$JOBS")
    printf '%s\n' "$key" >"$bdir/.fe-php-build-key"
  fi
  (cd "$bdir" && run_logged "make install $ext" make install)
  [[ -f "$EXT_DIR/$ext.so" ]] || die "PECL $ext: $EXT_DIR/$ext.so was not installed"
  PECL_BUILT+=("$pkg=$ver")
done
T_PECL=$((SECONDS - T_PECL))
find "$EXT_DIR" -name '*.so' -exec strip --strip-debug {} +

# -------------------------------------------------------------- ini files
mkdir -p "$PREFIX/etc/conf.d" "$PREFIX/etc/mods-available"
# php.ini: Debian's php8.2-fpm php.ini, made as debian/rules makes it.
pcntl_functions="$(sed -ne "/^PHP_FUNCTION/ s/PHP_FUNCTION(\(.*\));/\1/;t end;d;:end p" "$SRC_DIR/ext/pcntl/php_pcntl.h" | tr '\n' ',')"
tr '\t' ' ' <"$SRC_DIR/php.ini-production" |
  sed "${PHP_INI_SED[@]//@PCNTL_FUNCTIONS@/$pcntl_functions}" >"$PREFIX/etc/php.ini"
# One ini per module in mods-available, linked from conf.d as
# <priority>-<module>.ini; the priority is the file's "; priority=NN" line, 20
# without one (Debian's phpenmod, /usr/lib/php/php-helper get_priority).
# OPcache is the exception: fe-php loads it itself, as [php.opcache] says
# (the specification's keys), so it is available but not enabled here; a
# second zend_extension line would load it twice.
for ini in "$CONF_DIR"/mods-available/*.ini; do
  mod="$(basename "$ini" .ini)"
  prio="$(sed -n 's/^;[[:space:]]*priority[[:space:]]*=[[:space:]]*\([0-9]\+\)[[:space:]]*$/\1/p' "$ini" | head -n1)"
  install -m 644 "$ini" "$PREFIX/etc/mods-available/$mod.ini"
  [[ "$mod" == opcache ]] && continue
  ln -s "../mods-available/$mod.ini" "$PREFIX/etc/conf.d/${prio:-20}-$mod.ini"
done

# ----------------------------------------------------------------- verify
PHP="$PREFIX/bin/php"
[[ -x "$PHP" ]] || die "$PHP missing"
zts="$("$PHP" -n -r 'echo PHP_ZTS, PHP_EOL;')"
[[ "$zts" == 1 ]] || die "PHP_ZTS is '$zts', want 1"
# With the installed php.ini and conf.d (read by default): start-up must be
# silent (a module that fails to load warns here).
out="$("$PHP" -d display_startup_errors=1 -d display_errors=stderr -d error_reporting=-1 -r 'echo "ok";' 2>&1)"
[[ "$out" == ok ]] || die "php with $PREFIX/etc/php.ini and conf.d says: $out"
inifile="$("$PHP" -r 'echo php_ini_loaded_file();')"
[[ "$inifile" == "$PREFIX/etc/php.ini" ]] || die "php loaded '$inifile', want $PREFIX/etc/php.ini"
expose="$("$PHP" -r 'var_dump(ini_get("expose_php"));')"
[[ "$expose" == 'string(0) ""' ]] || die "expose_php is $expose with Debian's php.ini, want Off"
sock="$("$PHP" -r 'echo ini_get("mysqli.default_socket"), " ", ini_get("pdo_mysql.default_socket");')"
[[ "$sock" == "$MYSQL_SOCK $MYSQL_SOCK" ]] || die "mysqli/pdo_mysql.default_socket are '$sock', want $MYSQL_SOCK"
opc="$("$PHP" -d zend_extension=opcache -d opcache.enable_cli=1 -r 'var_dump(is_array(opcache_get_status()));')"
[[ "$opc" == "bool(true)" ]] || die "opcache is not on: $opc"
loaded="$("$PHP" -r 'echo implode("\n", get_loaded_extensions()), "\n";')"
missing=()
for m in "${REQUIRED_MODULES[@]}"; do
  grep -qix "$m" <<<"$loaded" || missing+=("$m")
done
# Every enabled ini's module must be loaded, and every built module enabled.
for ini in "$PREFIX"/etc/conf.d/*.ini; do
  so="$(sed -n 's/^\(zend_\)\{0,1\}extension=\(.*\)\.so$/\2/p' "$ini")"
  [[ "$so" == opcache ]] && so="Zend OPcache"
  [[ -z "$so" ]] || grep -qix "$so" <<<"$loaded" || missing+=("$so ($ini)")
done
((${#missing[@]} == 0)) || die "modules not loaded: ${missing[*]}"
for so in "$EXT_DIR"/*.so; do
  mod="$(basename "$so" .so)"
  [[ "$mod" == opcache ]] && continue # loaded by fe-php (see above)
  [[ -f "$PREFIX/etc/mods-available/$mod.ini" ]] || die "$so is built but has no ini in $CONF_DIR/mods-available"
done
log "verified: ZTS, Debian's php.ini, $(ls "$PREFIX"/etc/conf.d | wc -l) modules enabled in conf.d, opcache, MySQL socket ($("$PHP" -n -r 'echo PHP_VERSION;'))"

{
  printf '%s\n' "$STAMP"
  printf 'pecl: %s\n' "${PECL_BUILT[*]}"
} >"$STAMP_FILE"
if ((${#unavailable[@]} > 0)); then
  printf '%s\n' "${unavailable[@]}" >"$UNAVAILABLE_FILE"
else
  rm -f "$UNAVAILABLE_FILE"
fi
log "installed $STAMP in $PREFIX (PHP $T_PHP s, PECL $T_PECL s, total $((SECONDS - T_START)) s)"
