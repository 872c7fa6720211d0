#!/usr/bin/env bash
# bench/wordpress.sh: the WordPress front page (/) through fe-php running the
# spec's WordPress recipe against nginx + PHP-FPM, same site, same database,
# same machine, same wrk load. See bench/README.md.
#
#	bash bench/wordpress.sh                 # 2 s warm-up + 20 s per server
#	RUNS=3 bash bench/wordpress.sh
#	PERF=1 bash bench/wordpress.sh          # plus syscalls/request and profiles of both
#	LIBPHP_B=/usr/local/php-zts-x/lib/libphp.so bash bench/wordpress.sh
#
# Servers, both with WORKERS PHP workers (default 4) and OPcache on
# (validate_timestamps off), on one MariaDB (scripts/wp-site.sh):
#   nginx+fpm  nginx (root /usr/share/wordpress, /wp-content/ and /wp-includes/
#              from the site's webroot, try_files $uri $uri/ /index.php?$args)
#              + php-fpm8.2, pm = static
#   fe-php     the spec's WordPress recipe: the front page is on the embedded
#              backend (worker_pool_size = WORKERS); /wp-admin/ and
#              /wp-login.php go to its own php-fpm pool (idle here)
#   fe-php-B   with LIBPHP_B set: the same recipe on another libphp build (a
#              PHP build change measured against the current one; sharing
#              fe-php's idle FPM pool); its CPU is not split
# Server CPU is each whole process tree's, split into "server" (nginx; fe-php's
# Go side) and "PHP" (the FPM pool; fe-php's PHP execution, from a perf
# profile of the fe-php process). MariaDB's CPU is shown apart.
#
# Prints a Markdown table and writes it to bench/results/wordpress-DATE.md.

# The page costs tens of ms of PHP: fewer connections than php.sh, so that
# requests queue less than 2 deep per PHP worker and latency means something.
: "${CONNS:=8}"
: "${DURATION:=20}" # ~800 requests a run at ~40 req/s
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_init wordpress "$@"
bench_need go nginx wrk curl php-fpm8.2 make mariadbd

WORKERS=${WORKERS:-4}
SPLIT=${SPLIT:-1}                 # 1: perf profile of fe-php for its server/PHP split
SPLIT_SECONDS=${SPLIT_SECONDS:-10}
FEPHP_ENV=${FEPHP_ENV:-}          # environment for fe-php, e.g. "GOMAXPROCS=8" (space-separated NAME=value)
[[ $FEPHP_ENV =~ ^([A-Za-z_][A-Za-z0-9_]*=[^[:space:]]*[[:space:]]*)*$ ]] || die "FEPHP_ENV: want NAME=value words, got: $FEPHP_ENV"
export FEPHP_ENV # read by fe-php's starter shell (word-split there, not evaluated)
FPM=$(command -v php-fpm8.2)
WP=/usr/share/wordpress

# Debian's WordPress, its default theme and PHP's MySQL driver.
wp_need_packages() {
	local p missing=()
	for p in wordpress wordpress-theme-twentytwentythree php8.2-mysql php8.2-curl; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
	done
	((${#missing[@]} == 0)) && return 0
	[[ $(id -u) == 0 ]] || die "missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root"
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
		{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
}
wp_need_packages
[[ $(id -u) == 0 ]] || die "run as root: scripts/wp-site.sh writes /etc/wordpress/config-HOST.php"
if [[ $SPLIT == 1 || $PERF == 1 ]] && ! perf record -q -o /dev/null -- true >/dev/null 2>&1; then
	log "perf does not work here (install linux-perf, or check kernel.perf_event_paranoid): no server/PHP split for fe-php, no PERF=1"
	SPLIT=0 PERF=0
fi

# fe-php as "make build" makes it, but keeping the symbol table (the
# profile then names Go functions; the code is the same).
log "building fe-php with the embedded backend (make bridge + go build -tags fephp_bridge)"
(cd "$REPO_DIR" && make -s bridge >&2 && go build -tags fephp_bridge -trimpath -o "$BENCH_WORK/fe-php" ./cmd/fe-php)
FEPHP_BIN=$BENCH_WORK/fe-php

# The site: MariaDB (Unix socket only) in the work dir, the static root
# (webroot/wp-content, webroot/wp-includes) and /etc/wordpress/config-HOST.php.
HOST=wp-bench-$$.localhost
SITE=$BENCH_WORK/site
WP_SITE_STARTED=
wp_site_stop() {
	[[ -n $WP_SITE_STARTED ]] || return 0
	bash "$REPO_DIR/scripts/wp-site.sh" stop "$SITE" "$HOST" >&2
}
# An FPM master whose start failed halfway is not in BENCH_PIDS yet.
wp_fpm_stop() {
	local f
	for f in "$BENCH_WORK"/fpm-*/php-fpm.pid; do
		[[ -f $f ]] && bench_stop "$(cat "$f")"
	done
	return 0
}
BENCH_EXIT_HOOKS+=(wp_fpm_stop wp_site_stop)
WP_SITE_STARTED=1 # from here on, stop it on exit even if start fails halfway
bash "$REPO_DIR/scripts/wp-site.sh" start "$SITE" "$HOST" >&2
WEBROOT=$SITE/webroot
# No wp-cron: it would spawn loopback requests now and then from the front
# page (and WordPress.org update checks that fail without internet).
echo "define('DISABLE_WP_CRON', true);" >>"/etc/wordpress/config-$HOST.php"
MARIADB_PID=$(cat "$SITE/mysql.pid")

# PHP for FPM: Debian's own php.ini and conf.d (its extensions, OPcache
# among them), as fe-php's embedded PHP reads its build's copy of them (the
# same php.ini, Debian's extensions plus a few); OPcache's timestamps off
# on both.
FPM_ARGS=(-c /etc/php/8.2/fpm/php.ini -R -d opcache.enable=1 -d opcache.validate_timestamps=0
	-d opcache.memory_consumption=128 -d opcache.max_accelerated_files=10000)
[[ -f /etc/php/8.2/fpm/conf.d/20-mysqli.ini ]] || die "php8.2-fpm has no mysqli: install php8.2-mysql"


# Both servers get the same Host header, HOST without a port: WordPress's
# home URL (which the installer takes from HTTP_HOST) must match what each
# server passes as HTTP_HOST, or the front page is a 301 to the canonical
# URL. Debian's nginx passes HTTP_HOST as $host, which drops the port
# (/etc/nginx/fastcgi_params); fe-php passes the Host header as it came.
PORT_A=$(bench_free_port "${PORT_A:-18280}")
CANON=$HOST
BENCH_WRK_ARGS=(-H "Host: $CANON")

# nginx + FPM under one parent, so that one process tree holds both.
SOCK_A=$BENCH_WORK/fpm-a.sock
CONF_A=$(bench_fpm_conf fpm-a "$SOCK_A")
bench_nginx_conf "$WP" "$PORT_A" "        server_name $HOST;
        index index.php;
        location /wp-content/ { root $WEBROOT; }
        location /wp-includes/ { root $WEBROOT; }
        location / { try_files \$uri \$uri/ /index.php?\$args; }
        location ~ \\.php\$ {
            try_files \$uri =404;
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass unix:$SOCK_A;
        }"
# curl resolves *.localhost to 127.0.0.1 itself.
bench_start nginx+fpm "http://$HOST:$PORT_A/wp-login.php" bash -c '
	"$1" "${@:4}" -y "$2" &
	for i in $(seq 100); do [ -S "'"$SOCK_A"'" ] && break; sleep 0.05; done
	exec nginx -p "'"$BENCH_WORK/nginx"'" -e "'"$BENCH_WORK/nginx/error.log"'" -c "$3"
' _ "$FPM" "$CONF_A" "$NGINX_CONF" "${FPM_ARGS[@]}"
PID_A=$STARTED_PID
FPM_A=$(cat "$BENCH_WORK/fpm-a/php-fpm.pid")
BENCH_PIDS+=("$FPM_A") # stopped on exit too

# WordPress's installer, through nginx + FPM (its loopback check of pretty
# permalinks comes back to nginx).
log "installing WordPress as http://$CANON/"
PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
curl -s --max-time 60 -H "Host: $CANON" "http://127.0.0.1:$PORT_A/wp-admin/install.php?step=2" \
	--data-urlencode weblog_title="fe-php WordPress" --data-urlencode user_name=admin \
	--data-urlencode admin_password="$PASSWORD" --data-urlencode admin_password2="$PASSWORD" \
	--data pw_weak=1 --data-urlencode admin_email=admin@example.com --data blog_public=0 --data language= \
	>"$BENCH_WORK/install.html" || die "WordPress install request failed"
grep -q '<h1>Success!</h1>' "$BENCH_WORK/install.html" || {
	sed 's/<[^>]*>//g' "$BENCH_WORK/install.html" | grep -v '^\s*$' | head -20 >&2
	die "WordPress install failed"
}
# Pretty permalinks, as on any real site. The installer turns them on only
# if its loopback request to http://HOST/ (port 80, where nothing listens)
# works; set them here and let the next request rebuild the rewrite rules.
mariadb --no-defaults -S "$SITE/mysql.sock" -uroot wordpress -e "
	UPDATE wp_options SET option_value = '/%year%/%monthnum%/%day%/%postname%/' WHERE option_name = 'permalink_structure';
	DELETE FROM wp_options WHERE option_name = 'rewrite_rules';" || die "cannot set the permalink structure"

# fe-php with the recipe, and its own FPM pool for /wp-admin/ and
# /wp-login.php (not measured), under one parent.
PORT_B=$(bench_free_port "${PORT_B:-$((PORT_A + 1))}")
SOCK_B=$BENCH_WORK/fpm-b.sock
CONF_B=$(bench_fpm_conf fpm-b "$SOCK_B")
# examples/wordpress/fe-php.toml is what is measured (the recipe as the
# specification writes it, and the guide's settings); only where things
# are, the worker count, OPcache's timestamp checks (off, as for FPM) and
# the php.ini (the build's copy of Debian's, as FPM reads Debian's) change, and the access log is off on both
# sides.
EXAMPLE=$REPO_DIR/examples/wordpress/fe-php.toml
subst() { # subst OLD NEW: replace the one line OLD of the example
	grep -qxF "$1" "$BENCH_WORK/fe-php.toml" || die "$EXAMPLE has no line: $1"
	OLD=$1 NEW=$2 perl -pi -e 'chomp(my $l = $_); $_ = "$ENV{NEW}\n" if $l eq $ENV{OLD}' "$BENCH_WORK/fe-php.toml"
}
cp "$EXAMPLE" "$BENCH_WORK/fe-php.toml"
# One worker process: WORKERS PHP threads in all, as FPM's WORKERS children.
subst 'listen = "127.0.0.1:8080"' "listen = \"127.0.0.1:$PORT_B\"
log_level = \"warn\"
workers = 1"
subst 'document_root = "/usr/share/wordpress"' "document_root = \"$WP\""
subst 'worker_pool_size = 4' "worker_pool_size = $WORKERS"
subst 'fpm_socket = "/run/php/php8.2-fpm.sock"' "fpm_socket = \"$SOCK_B\""
subst 'validate_timestamps = true' 'validate_timestamps = false'
# The example points the embedded PHP at FPM's php.ini; the measurement
# leaves it at its build's copy of Debian's php.ini (the same settings),
# so that the two sides differ only in their server.
subst 'ini_file = "/etc/php/8.2/fpm/php.ini"' ''
subst 'root = "/srv/wordpress-static"' "root = \"$WEBROOT\""
subst 'max_size = 5' "max_size = $WORKERS"
printf '\n[server.access_log]\noutput = "off"\n' >>"$BENCH_WORK/fe-php.toml"
"$FEPHP_BIN" check -c "$BENCH_WORK/fe-php.toml" >/dev/null
bench_start fe-php "http://$HOST:$PORT_B/wp-login.php" bash -c '
	"$1" "${@:4}" -y "$2" &
	for i in $(seq 100); do [ -S "'"$SOCK_B"'" ] && break; sleep 0.05; done
	exec env $FEPHP_ENV "'"$FEPHP_BIN"'" run -c "$3"
' _ "$FPM" "$CONF_B" "$BENCH_WORK/fe-php.toml" "${FPM_ARGS[@]}"
PID_B=$STARTED_PID
FPM_B=$(cat "$BENCH_WORK/fpm-b/php-fpm.pid")
BENCH_PIDS+=("$FPM_B")

# Every run also records, in ns (schedstat; /proc/PID/stat's 10 ms ticks are
# too coarse to split a 20 s run): both servers' trees, nginx+fpm's FPM pool
# (its "PHP" part), fe-php's FPM pool (idle: the front page is embedded) and
# MariaDB, whose CPU is part of the load, not noise.
BENCH_SAMPLE_PIDS=("$PID_A" "$FPM_A" "$PID_B" "$FPM_B" "$MARIADB_PID")
BENCH_LOAD_PIDS=("$MARIADB_PID")

# Sanity check: both render the same front page.
front() { # PORT FILE -> "status size[ -> location]"
	curl -s --max-time 30 -o "$2" -w '%{http_code} %{size_download} -> %{redirect_url}' -H "Host: $CANON" "http://127.0.0.1:$1/" |
		sed 's/ -> $//'
}
title() { grep -o '<title>[^<]*' "$1" | head -1 | cut -c8-; }
got_a=$(front "$PORT_A" "$BENCH_WORK/front-nginx.html")
got_b=$(front "$PORT_B" "$BENCH_WORK/front-fe-php.html")
log "front page: nginx+fpm '$got_a' '$(title "$BENCH_WORK/front-nginx.html")', fe-php '$got_b' '$(title "$BENCH_WORK/front-fe-php.html")'"
[[ $got_a == "200 "* ]] || die "nginx+fpm: GET / gave '$got_a', want 200"
[[ $got_b == "200 "* ]] || die "fe-php: GET / gave '$got_b', want 200"
[[ $(title "$BENCH_WORK/front-nginx.html") == "$(title "$BENCH_WORK/front-fe-php.html")" ]] || die "the two front pages have different titles"
grep -q 'Hello world!' "$BENCH_WORK/front-fe-php.html" || die "fe-php's front page does not show the first post"
if cmp -s "$BENCH_WORK/front-nginx.html" "$BENCH_WORK/front-fe-php.html"; then
	SAME="identical (${got_a#* } bytes)"
else
	diff "$BENCH_WORK/front-nginx.html" "$BENCH_WORK/front-fe-php.html" | head -20 >&2 || true
	awk -v a="${got_a#* }" -v b="${got_b#* }" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= a / 50) }' ||
		die "the two front pages differ in size by more than 2%: ${got_a#* } vs ${got_b#* } bytes"
	SAME="same title, sizes ${got_a#* } and ${got_b#* } bytes (diff above)"
fi
log "front pages: $SAME"

SERVERS=("nginx+fpm $PORT_A $PID_A" "fe-php $PORT_B $PID_B")

# The recipe on another build of PHP, to measure a change to the build
# (flags, patches) in the same interleaved run.
if [[ -n ${LIBPHP_B:-} ]]; then
	LIBPHP_B=$(realpath -e "$LIBPHP_B") || die "LIBPHP_B: no such file"
	PORT_C=$(bench_free_port $((PORT_B + 1)))
	# fe-php's configuration, on another port and with the other libphp.
	OLD="listen = \"127.0.0.1:$PORT_B\"" NEW="listen = \"127.0.0.1:$PORT_C\"" \
		LIB="libphp_path = $(bench_toml_str "$LIBPHP_B")" perl -pe '
		chomp(my $l = $_);
		$_ = "$ENV{NEW}\n" if $l eq $ENV{OLD};
		$_ = "[php]\n$ENV{LIB}\n" if $l eq "[php]";' "$BENCH_WORK/fe-php.toml" >"$BENCH_WORK/fe-php-B.toml"
	grep -qxF "listen = \"127.0.0.1:$PORT_C\"" "$BENCH_WORK/fe-php-B.toml" && grep -q '^libphp_path' "$BENCH_WORK/fe-php-B.toml" ||
		die "cannot derive fe-php-B's configuration"
	bench_start fe-php-B "http://$HOST:$PORT_C/wp-login.php" env $FEPHP_ENV "$FEPHP_BIN" run -c "$BENCH_WORK/fe-php-B.toml"
	SERVERS+=("fe-php-B $PORT_C $STARTED_PID")
	got_c=$(front "$PORT_C" "$BENCH_WORK/front-fe-php-B.html")
	[[ $got_c == "200 "* ]] || die "fe-php-B: GET / gave '$got_c', want 200"
	[[ $(title "$BENCH_WORK/front-fe-php-B.html") == "$(title "$BENCH_WORK/front-fe-php.html")" ]] ||
		die "fe-php-B's front page has another title than fe-php's"
	cmp -s "$BENCH_WORK/front-fe-php.html" "$BENCH_WORK/front-fe-php-B.html" ||
		log "fe-php-B's front page differs from fe-php's: $(diff "$BENCH_WORK/front-fe-php.html" "$BENCH_WORK/front-fe-php-B.html" | head -5)"
fi
MACHINE=$(bench_machine)
CASE=front-page
for ((run = 1; run <= RUNS; run++)); do
	for s in "${SERVERS[@]}"; do
		read -r name port pid <<<"$s"
		bench_measure "$CASE" "$name" "http://127.0.0.1:$port/" "$pid"
	done
done

# wp_split: under the same wrk load, a perf profile of fe-php's process
# (call graphs, so that a sample in the kernel is charged to whoever made
# the system call) -> SPLIT_LINE "go_user go_kernel php_user php_kernel
# unknown samples" (fractions) and the profile file.
SPLIT_LINE=
SPLIT_FILE=${BENCH_RESULTS%.md}-split-fe-php.txt
wp_split() {
	local data=$BENCH_WORK/perf-split.data wpid ppid
	log "fe-php: perf record -g for ${SPLIT_SECONDS}s under load (server/PHP split)"
	bench_wait_quiet
	wrk -t"$THREADS" -c"$CONNS" -d"$((SPLIT_SECONDS + 2))"s "${BENCH_WRK_ARGS[@]}" "http://127.0.0.1:$PORT_B/" >/dev/null 2>&1 &
	wpid=$!
	sleep 1
	# fe-php's workers serve, not its supervisor: all of its processes.
	perf record -q -F 999 -g -p "$(bench_pids "$PID_B" | tr " \n" ",," | sed "s/,*$//")" -o "$data" -- sleep "$SPLIT_SECONDS" >/dev/null 2>&1 &
	ppid=$!
	BENCH_PERF_PIDS=("$wpid" "$ppid")
	wait "$ppid" || { log "perf record failed"; BENCH_PERF_PIDS=(); return 0; }
	wait "$wpid" || true
	BENCH_PERF_PIDS=()
	# A sample is the Go side's if its first user-space frame is in the
	# fe-php binary (Go makes its system calls itself), PHP's if it is in
	# libphp, opcache, the bridge, PCRE's JIT code or a C library PHP uses;
	# libc, ld.so and the vDSO decide by the next frame that says more, else
	# count as PHP (Go calls libc only around cgo calls). Kernel-only samples
	# (no user frame) stay unattributed.
	SPLIT_LINE=$(perf script -i "$data" -F comm,tid,ip,sym,dso 2>/dev/null | awk -v bin="$FEPHP_BIN" -v top="$BENCH_WORK/split-top.txt" '
		BEGIN { RS = ""; FS = "\n" }
		function dso(line) {
			if (match(line, /\([^()]*\)$/)) return substr(line, RSTART + 1, RLENGTH - 2)
			return "[unknown]"
		}
		function sym(line) { # "   addr symbol (dso)" -> symbol
			sub(/^[ \t]*[0-9a-f]+ /, "", line)
			sub(/ \([^()]*\)$/, "", line)
			return line
		}
		{
			n++
			kern = dso($2) ~ /^\[kernel/
			side = ""; weak = ""; first = 0
			for (i = 2; i <= NF && side == ""; i++) {
				d = dso($i)
				if (d ~ /^\[kernel/ || d == "[unknown]") continue
				if (!first) first = i
				if (d == bin) side = "go"
				else if (d ~ /\/libc\.so|\/ld-linux|^\[vdso\]|\/libpthread/) { if (weak == "") weak = d }
				else side = "php"
			}
			if (side == "") side = (weak != "" ? "php" : "unknown")
			if (side == "unknown") { c["unknown"]++; next }
			c[side (kern ? "_kernel" : "_user")]++
			# What the time went to: the leaf function in user space; for a
			# kernel sample, the user function that entered the kernel (and,
			# for Go s generic syscall functions, its caller).
			if (!kern) key = "[.] " sym($2)
			else {
				key = "[k] " sym($first)
				if (key ~ /Syscall6|syscall\.Syscall|RawSyscall/ && first < NF) key = key " <- " sym($(first + 1))
			}
			t[side, key]++
		}
		END {
			if (!n) exit 1
			printf "%.4f %.4f %.4f %.4f %.4f %d\n", c["go_user"] / n, c["go_kernel"] / n,
				c["php_user"] / n, c["php_kernel"] / n, c["unknown"] / n, n
			for (k in t) {
				split(k, ks, SUBSEP)
				printf "%s\t%d\t%.2f\t%s\n", ks[1], t[k], t[k] * 100 / n, ks[2] > top
			}
		}') || { log "no perf samples"; SPLIT_LINE=; return 0; }
	{
		echo "# perf: fe-php (the WordPress recipe) serving / under wrk -t$THREADS -c$CONNS, ${SPLIT_SECONDS}s at 999 Hz"
		echo
		echo "## split (fractions of samples): go_user go_kernel php_user php_kernel unattributed samples"
		echo "$SPLIT_LINE"
		echo
		echo "## by DSO"
		bench_perf_report "$data" 15 --no-children --sort dso -g none
		echo
		echo "## self time, top symbols"
		bench_perf_report "$data" 60 --no-children --sort dso,symbol -g none --percent-limit 0.4
		echo
		echo "## Go side: where its samples went (% of all samples; [.] user-space leaf function,"
		echo "## [k] kernel time, by the Go function that entered the kernel)"
		sort -t'	' -k2,2nr "$BENCH_WORK/split-top.txt" | awk -F'\t' '$1 == "go" { printf "%7.2f%%  %s\n", $3, $4 }' | head -30 || true
		echo
		echo "## PHP side, kernel time by the function that entered the kernel (% of all samples)"
		sort -t'	' -k2,2nr "$BENCH_WORK/split-top.txt" | awk -F'\t' '$1 == "php" && $4 ~ /^\[k\]/ { printf "%7.2f%%  %s\n", $3, $4 }' | head -15 || true
		echo
		echo "## inclusive time (children), top symbols"
		bench_perf_report "$data" 60 --children --sort symbol -g none --percent-limit 2
	} >"$SPLIT_FILE"
	log "profile: $SPLIT_FILE"
}
if [[ $SPLIT == 1 ]]; then wp_split; fi

if [[ $PERF == 1 ]]; then
	for s in "${SERVERS[@]}"; do
		read -r name port pid <<<"$s"
		bench_perf "$name" "$CASE" "http://127.0.0.1:$port/" "$pid"
	done
fi

PHP_MSGS=$(cat "$BENCH_WORK/fe-php.log" "$BENCH_WORK"/fe-php-B.log 2>/dev/null | grep -c 'msg=php' || true)

# wp_table: the median runs, CPU split into server and PHP, with ratios
# against nginx+fpm. Row fields: 5 total CPU us/req (ticks), 11 runs, then
# the BENCH_SAMPLE_PIDS in us/req (schedstat): 12 nginx+fpm tree, 13 its
# FPM, 14 fe-php tree, 15 its FPM, 16 MariaDB. The split is taken as
# fractions of the ns numbers and applied to the total.
wp_table() {
	bench_medians | awk -F'\t' -v sl="$SPLIT_LINE" '
		{
			s[NR] = $2; rps[NR] = $3; p99[NR] = $4; cpu[NR] = $5; sc[NR] = $6; wc[NR] = $7; oc[NR] = $8; req[NR] = $9; err[NR] = $10
			runs[NR] = $11; db[NR] = $16
			if ($2 == "nginx+fpm") { srv[NR] = $12 > 0 ? $5 * ($12 - $13) / $12 : 0; php[NR] = $5 - srv[NR]; base = NR }
			else if ($2 == "fe-php") {
				# fe-php: its own process, split by the perf profile; its idle
				# FPM pool counts as PHP.
				if (sl != "" && $14 > 0) {
					split(sl, f, " ")
					known = 1 - f[5]
					gofrac = known > 0 ? (f[1] + f[2]) / known : 0
					srv[NR] = $5 * ($14 - $15) / $14 * gofrac; php[NR] = $5 - srv[NR]
				} else { srv[NR] = -1; php[NR] = -1 }
			} else { srv[NR] = -1; php[NR] = -1 } # fe-php-B: not profiled
		}
		function v(x) { return x < 0 ? "n/a" : sprintf("%.0f", x) }
		function r(a, b) { return (a < 0 || b <= 0) ? "n/a" : sprintf("%.2fx", a / b) }
		END {
			print "| server | req/s | p99 | CPU us/req: all | server | PHP | MariaDB | req/s vs nginx+fpm | CPU/req | server CPU/req |"
			print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
			for (i = 1; i <= NR; i++) {
				r1 = r(rps[i], rps[base]); if (i != base) r1 = "**" r1 "**"
				printf "| %s | %d | %.1f ms | %.0f | %s | %s | %.0f | %s | %s | %s |\n", s[i], rps[i], p99[i] / 1000,
					cpu[i], v(srv[i]), v(php[i]), db[i], r1, r(cpu[i], cpu[base]), r(srv[i], srv[base])
			}
			print ""
			print "| server | server cores | wrk cores | other processes (cores) | requests | errors | median of |"
			print "|---|---:|---:|---:|---:|---:|---:|"
			for (i = 1; i <= NR; i++) {
				printf "| %s | %.2f | %.2f | %.2f | %d | %d | %d runs |\n", s[i], sc[i], wc[i], oc[i], req[i], err[i], runs[i]
				if (oc[i] > 0.15) noisy = 1
				if (err[i] > 0) errors = 1
			}
			if (noisy) print "\n**Other processes used more than 0.15 cores during some runs: those numbers are distorted.**"
			if (errors) print "\n**Some runs had errors or non-2xx responses.**"
		}'
}

{
	echo "# WordPress front page: fe-php (the spec's recipe) vs nginx + PHP-FPM ($BENCH_DATE)"
	echo
	echo "GET / with Host: $CANON; wrk -t$THREADS -c$CONNS -d${DURATION}s --latency after a ${WARMUP}s warm-up,"
	echo "keep-alive, 127.0.0.1; median of $RUNS run(s) by req/s, servers alternating. $WORKERS PHP workers"
	echo "on both (fe-php worker_pool_size; FPM pm = static), OPcache on (validate_timestamps off)."
	echo "CPU us/req: \"all\" is the server's whole process tree (nginx + FPM; fe-php + its idle FPM pool);"
	echo "\"server\" is nginx's part, or fe-php's Go side; \"PHP\" the FPM pool's, or fe-php's PHP"
	echo "execution. MariaDB's CPU is in neither."
	[[ -z $FEPHP_ENV ]] || echo "fe-php ran with the environment $FEPHP_ENV."
	[[ -z ${LIBPHP_B:-} ]] || echo "fe-php-B runs $LIBPHP_B, fe-php the default libphp."
	echo
	wp_table
	echo
	if [[ -n $SPLIT_LINE ]]; then
		read -r gu gk pu pk un ns <<<"$SPLIT_LINE"
		echo "fe-php's split comes from a separate ${SPLIT_SECONDS}s perf profile under the same load ($ns samples;"
		echo "details in $(basename "$SPLIT_FILE")): Go user $(awk -v x="$gu" 'BEGIN { printf "%.1f%%", x * 100 }'),"
		echo "kernel for Go $(awk -v x="$gk" 'BEGIN { printf "%.1f%%", x * 100 }'), PHP user $(awk -v x="$pu" 'BEGIN { printf "%.1f%%", x * 100 }'),"
		echo "kernel for PHP $(awk -v x="$pk" 'BEGIN { printf "%.1f%%", x * 100 }'), unattributed $(awk -v x="$un" 'BEGIN { printf "%.1f%%", x * 100 }') (spread pro rata). A kernel"
		echo "sample belongs to the side whose code made the system call (first user-space frame)."
	else
		echo "No perf profile (SPLIT=0 or perf unavailable): fe-php's server/PHP split is not known."
	fi
	echo
	echo "Front pages: $SAME. PHP messages in fe-php's log during the bench: $PHP_MSGS."
	echo
	echo "Machine:"
	echo
	echo "$MACHINE"
	echo "- WordPress $(dpkg-query -W -f='${Version}' wordpress), theme twentytwentythree; $("$FPM" -v | head -1 | cut -d' ' -f1-2) (FPM, NTS);"
	echo "  embedded: ZTS libphp $(/usr/local/php-zts-embed/bin/php -v 2>/dev/null | head -1 | cut -d' ' -f2); MariaDB $(mariadbd --version 2>/dev/null | sed -n 's/.* Ver \([0-9.]*\).*/\1/p')"
	echo "- modules: FPM $(ls /etc/php/8.2/fpm/conf.d | wc -l) ini files in /etc/php/8.2/fpm/conf.d; embedded $(ls /usr/local/php-zts-embed/etc/conf.d | wc -l) in its build's conf.d (both with OPcache)"
	bench_syscall_table
} | tee "$BENCH_RESULTS"
log "results: $BENCH_RESULTS"
