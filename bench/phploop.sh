#!/usr/bin/env bash
# bench/phploop.sh: what a request costs PHP itself, with no server around
# it: bench/phploop/phploop.c runs a script's requests in a C loop through a
# libphp's embed SAPI (request start-up, execution, shutdown), on one
# thread. See bench/README.md.
#
#	bash bench/phploop.sh                            # hello.php, page.php
#	ROUNDS=9 bash bench/phploop.sh
#	PREFIX_B=/usr/local/php-zts-x bash bench/phploop.sh   # plus another ZTS build
#
# PHPs, each with its own php.ini and conf.d and OPcache on
# (validate_timestamps off):
#   nts     Debian's libphp8.2-embed (NTS, the same build as its php-fpm8.2,
#           with Debian's embed conf.d); needs php8.2-dev for the headers
#   zts     fe-php's ZTS build ($PREFIX, default /usr/local/php-zts-embed),
#           every module it enables (48)
#   zts-nts-modules  the same, with only the modules Debian's NTS embed
#           conf.d loads (PHP_INI_SCAN_DIR), to tell ZTS's cost from the
#           extra modules'
#   zts-B   with PREFIX_B set: another ZTS build (a change to the build
#           measured against the current one)
# Each round runs every PHP once, in turn, and each run reports its fastest
# batch (noise only ever adds time); the table shows the median round, so
# that a slow minute of the machine cannot favour one side, and the best
# round (on a machine whose speed swings within a round, the closest to
# each PHP's own cost).
#
# Prints a Markdown table and writes it to bench/results/phploop-DATE.md.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_init phploop "$@"
bench_need gcc

: "${ROUNDS:=5}"     # rounds; the median is reported
: "${BATCHES:=10}"   # batches per run; the fastest counts
PREFIX=$(realpath -m "${PREFIX:-/usr/local/php-zts-embed}")
[[ -z ${PREFIX_B:-} ]] || PREFIX_B=$(realpath -m "$PREFIX_B")
CASES=${CASES:-hello.php page.php}
# Requests per run, per script: about a second each.
declare -A REQUESTS=([hello.php]=40000 [page.php]=2000)

[[ -f $PREFIX/lib/libphp.so ]] || die "no ZTS PHP in $PREFIX (make php)"
[[ -z ${PREFIX_B:-} || -f $PREFIX_B/lib/libphp.so ]] || die "PREFIX_B=$PREFIX_B: no lib/libphp.so there"

# The scripts are bench/php.sh's.
DOCROOT=$BENCH_WORK/www
mkdir -p "$DOCROOT"
echo '<?php echo "Hello, World!";' >"$DOCROOT/hello.php"
sed -n '/^cat >"$DOCROOT\/page.php" <<.PHP.$/,/^PHP$/p' "$BENCH_DIR/php.sh" | sed '1d;$d' >"$DOCROOT/page.php"
grep -q usort "$DOCROOT/page.php" || die "cannot find page.php in bench/php.sh"

# build NAME CONFIG LIBDIR LIB: the harness against one PHP.
build() {
	local name=$1 config=$2 libdir=$3 lib=$4
	gcc -O2 -Wall -o "$BENCH_WORK/phploop-$name" "$BENCH_DIR/phploop/phploop.c" \
		$("$config" --includes) -L"$libdir" -l"$lib" -Wl,-rpath,"$libdir" ||
		die "cannot build the harness against $config"
}
PHPS=()
if [[ -f /usr/include/php/20220829/sapi/embed/php_embed.h && -f /usr/lib/libphp8.2.so ]]; then
	build nts php-config8.2 /usr/lib php8.2
	PHPS+=(nts)
else
	log "no NTS row: needs Debian's libphp8.2-embed and php8.2-dev (apt-get install libphp8.2-embed php8.2-dev)"
fi
build zts "$PREFIX/bin/php-config" "$PREFIX/lib" php
PHPS+=(zts)
# The ZTS build with NTS's module set: a scan dir of links to the ZTS
# build's ini files of the modules Debian's embed conf.d has.
NTS_CONFD=/etc/php/8.2/embed/conf.d
if [[ ${PHPS[0]} == nts && -d $NTS_CONFD ]]; then
	bench_module_subset "$PREFIX/etc/conf.d" "$NTS_CONFD" "$BENCH_WORK/zts-nts-modules.d"
	PHPS+=(zts-nts-modules)
fi
if [[ -n ${PREFIX_B:-} ]]; then
	build zts-B "$PREFIX_B/bin/php-config" "$PREFIX_B/lib" php
	PHPS+=(zts-B)
fi

# fe-php's build leaves OPcache to fe-php (not in its conf.d); Debian's
# embed conf.d loads it.
ini_for() { [[ $1 == nts ]] || echo "zend_extension=opcache.so"; }
# run PHP SCRIPT N: one run of the harness.
run() {
	local php=$1 bin=$1 scan=()
	if [[ $php == zts-nts-modules ]]; then
		bin=zts scan=(PHP_INI_SCAN_DIR="$BENCH_WORK/zts-nts-modules.d")
	fi
	(cd "$DOCROOT" && env "${scan[@]}" PHPLOOP_INI="$(ini_for "$php")" "$BENCH_WORK/phploop-$bin" "$DOCROOT/$2" "$3" "$BATCHES")
}

ROWS=()
for case in $CASES; do
	n=${REQUESTS[$case]:-2000}
	for ((round = 1; round <= ROUNDS; round++)); do
		for php in "${PHPS[@]}"; do
			line=$(run "$php" "$case" "$n") || die "$php: $case failed"
			log "$case / $php round $round: $line"
			ROWS+=("$case $php $round $line")
		done
	done
done

# The median round of each (script, PHP) by min_us, and ratios against the
# first PHP (nts when there).
table() {
	printf '%s\n' "${ROWS[@]}" | sed 's/[a-z_]*=//g' | awk -v first="${PHPS[0]}" '
		{ k = $1 SUBSEP $2; v[k, ++n[k]] = $4; cpu[k, n[k]] = $6; bytes[k] = $7
		  if (!($1 in seen)) { seen[$1] = 1; cases[++nc] = $1 }
		  if (!($2 in pseen)) { pseen[$2] = 1; phps[++np] = $2 } }
		function best(k, a,   i, b) {
			b = a[k, 1]; for (i = 2; i <= n[k]; i++) if (a[k, i] < b) b = a[k, i]
			return b
		}
		function med(k, a,   m, i, j, t, x) {
			m = n[k]; for (i = 1; i <= m; i++) x[i] = a[k, i]
			for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (x[j] < x[i]) { t = x[i]; x[i] = x[j]; x[j] = t }
			return x[int((m + 1) / 2)]
		}
		END {
			print "| script | PHP | us per request (wall), median round | CPU us | best round | output bytes | vs " first ": median | best |"
			print "|---|---|---:|---:|---:|---:|---:|---:|"
			for (c = 1; c <= nc; c++) {
				base = med(cases[c] SUBSEP first, v); bbase = best(cases[c] SUBSEP first, v)
				for (p = 1; p <= np; p++) {
					k = cases[c] SUBSEP phps[p]
					if (!(k in n)) continue
					w = med(k, v); b = best(k, v)
					printf "| %s | %s | %.2f | %.2f | %.2f | %d | %.3fx | %.3fx |\n", cases[c], phps[p], w, med(k, cpu), b, bytes[k], w / base, b / bbase
				}
			}
		}'
}

{
	echo "# PHP alone: requests in a C loop through the embed SAPI ($BENCH_DATE)"
	echo
	echo "One thread; per run $BATCHES batches (the fastest counts), the median of $ROUNDS rounds, PHPs in turn."
	echo "OPcache on (validate_timestamps off). nts: Debian's libphp8.2-embed; zts: $PREFIX${PREFIX_B:+; zts-B: $PREFIX_B}."
	[[ ! -d $BENCH_WORK/zts-nts-modules.d ]] || echo "zts-nts-modules: zts with only these of its modules (nts's): $(ls "$BENCH_WORK/zts-nts-modules.d" | sed 's/^[0-9]*-//; s/\.ini$//' | tr '\n' ' ')"
	echo
	table
	echo
	echo "Machine:"
	echo
	echo "- command: \`$BENCH_CMD\` (ROUNDS=$ROUNDS BATCHES=$BATCHES)"
	echo "- date: $(date -Is)"
	echo "- nproc: $(nproc); CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "- nts: $(php-config8.2 --version 2>/dev/null || echo none); zts: $("$PREFIX/bin/php-config" --version)"
	echo "- fe-php: $(cd "$REPO_DIR" && git rev-parse --short HEAD 2>/dev/null)"
} | tee "$BENCH_RESULTS"
log "results: $BENCH_RESULTS"
