# bench/lib.sh: shared functions for fe-php's benchmark scripts.
#
# Source it from a bench script (bash only):
#
#	. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#	bench_init static            # work dir, traps, results file name
#	bench_need nginx wrk         # install what is missing (as root)
#	bench_build_fephp            # -> $FEPHP_BIN
#	bench_start_nginx ROOT PORT  # -> $NGINX_PID
#	bench_start_fephp CONF       # -> $FEPHP_PID
#	bench_nginx_conf ROOT PORT   # only the config (start nginx yourself)
#	bench_measure CASE SERVER URL PID   # RUNS times, alternating servers
#	bench_table                  # median run of each case and server
#
# Everything started here is stopped, and the work dir removed, on exit.
# Servers bind 127.0.0.1 only. Load is bounded: every wrk run lasts
# $DURATION (or $WARMUP) seconds.

set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)

# Knobs, overridable from the environment.
: "${DURATION:=10}"    # seconds per measured wrk run
: "${WARMUP:=2}"       # seconds of warm-up before each measured run
: "${CONNS:=32}"       # wrk connections
: "${THREADS:=2}"      # wrk threads
: "${RUNS:=1}"         # measured runs per case and server; the median (by req/s) is reported
: "${PERF:=0}"         # 1: after the measured runs, profile each server with perf
: "${PERF_SECONDS:=5}" # length of a perf profile
: "${KEEP_WORK:=0}"    # 1: keep the work dir (configs, logs) for inspection
: "${CADDY:=1}"        # 1: bench/static.sh also measures Caddy's file_server (Debian's caddy)
: "${BASELINE:=0}"     # 1: also measure plain Go net/http servers (bench/gobaseline)
: "${NOISE_MAX:=0.15}"  # cores other processes may use before a run counts as noisy
: "${QUIET_WAIT:=60}"   # seconds to wait, before each run, for the machine to be idle
: "${RETRIES:=2}"       # reruns of a noisy run (the least noisy one is kept)

CLK_TCK=$(getconf CLK_TCK)

BENCH_PIDS=()  # processes to stop on exit (each is a process-group leader or a plain pid)
BENCH_SYSCALLS=() # from bench_perf
BENCH_PERF_PIDS=() # wrk / perf running in the background during bench_perf
BENCH_WRK_PID=
declare -A BENCH_NRUN=() # runs so far per "case/server"
BENCH_ROWS=()  # "case<TAB>server<TAB>rps<TAB>p99_us<TAB>cpu_us_req<TAB>srv_cores<TAB>wrk_cores<TAB>other_cores<TAB>requests<TAB>errors[<TAB>sample_cpu_us_req...]"
BENCH_WRK_ARGS=()    # more wrk arguments for every run, e.g. (-H "Host: example.test")
BENCH_CLIENT=wrk     # the load generator: wrk, or h2load (HTTPS, HTTP/2; see bench_h2load)
BENCH_H2LOAD_ARGS=() # with BENCH_CLIENT=h2load: more h2load arguments, e.g. (-m 10) or (--h1)
BENCH_H2LOAD_ALPN=   # with BENCH_CLIENT=h2load: the protocol ALPN must pick (h2, http/1.1), checked every run
BENCH_SAMPLE_PIDS=() # more process trees (root pids) whose CPU per request every run also
                     # records (bench_tree_ns), one field each after "errors" (e.g. the FPM
                     # part of nginx+fpm)
BENCH_LOAD_PIDS=()   # process trees the load keeps busy besides the server (e.g. its
                     # database): their CPU does not count as other processes' noise
BENCH_EXIT_HOOKS=()  # functions called on exit, after the servers are stopped

log() { printf '%s bench: %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# bench_init NAME: creates the work dir, installs the cleanup trap and
# names the results file bench/results/NAME-DATE.md.
bench_init() {
	local name=$1
	shift
	BENCH_NAME=$name
	BENCH_WORK=$(mktemp -d "${TMPDIR:-/tmp}/fe-php-bench-$name.XXXXXX")
	# nginx workers run as "nobody" when the master is root: let them in.
	chmod 755 "$BENCH_WORK"
	BENCH_DATE=$(date +%Y%m%d-%H%M%S)
	mkdir -p "$BENCH_DIR/results"
	BENCH_RESULTS="$BENCH_DIR/results/$name-$BENCH_DATE.md"
	BENCH_CMD="$(printf '%q ' "$0" "$@")"
	trap bench_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	log "work dir $BENCH_WORK"
}

bench_cleanup() {
	local rc=$? pid hook
	trap - INT TERM
	for pid in ${BENCH_WRK_PID:-} ${BENCH_PERF_PIDS[@]:-} "${BENCH_PIDS[@]}"; do
		bench_stop "$pid"
	done
	for hook in "${BENCH_EXIT_HOOKS[@]}"; do
		"$hook" || log "exit hook $hook failed"
	done
	if [[ $KEEP_WORK == 1 ]]; then
		log "kept work dir $BENCH_WORK"
	elif [[ -n ${BENCH_WORK:-} && -d $BENCH_WORK ]]; then
		rm -rf "$BENCH_WORK"
	fi
	exit "$rc"
}

# bench_alive PID: true while PID runs (a zombie, dead but not yet reaped
# by whoever adopted it, does not count).
bench_alive() {
	local stat
	# (Not stat=$(<file): under set -e a failed redirection there exits
	# the shell despite the ||.)
	{ read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
	stat=${stat##*) }
	[[ ${stat:0:1} != Z ]]
}

# bench_stop PID: TERM, wait up to 5 s, then KILL. Only our own pids.
bench_stop() {
	local pid=$1 i
	bench_alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 50); do
		bench_alive "$pid" || break
		sleep 0.1
	done
	if bench_alive "$pid"; then
		log "pid $pid ignored SIGTERM; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

# bench_need CMD...: makes sure each command exists; as root, installs
# the missing ones from Debian (nginx -> nginx-light, perf -> linux-perf,
# mariadbd -> mariadb-server).
bench_need() {
	local cmd pkg missing=()
	for cmd in "$@"; do
		command -v "$cmd" >/dev/null 2>&1 && continue
		case $cmd in
		nginx) pkg=nginx-light ;;
		perf) pkg=linux-perf ;;
		mariadbd) pkg=mariadb-server ;;
		h2load) pkg=nghttp2-client ;;
		php-fpm*) pkg=${cmd#php-}; pkg=php${pkg#fpm}-fpm ;;
		php-config*) pkg=php${cmd#php-config}-dev ;;
		*) pkg=$cmd ;;
		esac
		missing+=("$pkg")
	done
	((${#missing[@]} == 0)) && return 0
	[[ $(id -u) == 0 ]] || die "missing ${missing[*]}; install them (apt-get install ${missing[*]}) or run as root"
	log "installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 ||
		{ apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
	if [[ " ${missing[*]} " == *" nginx-light "* ]]; then
		# The package starts a system nginx on port 80; we run our own.
		systemctl stop nginx 2>/dev/null || service nginx stop 2>/dev/null || true
	fi
}

# bench_toml_str S: S as a TOML basic string, quoted.
bench_toml_str() {
	local v=${1//\\/\\\\}
	printf '"%s"' "${v//\"/\\\"}"
}

# bench_module_subset CONFD REF_CONFD DIR: links in DIR to the ini files of
# CONFD (NN-module.ini) whose module REF_CONFD enables too, whatever their
# priority prefixes: a PHP_INI_SCAN_DIR with only REF_CONFD's modules.
bench_module_subset() {
	local f m
	mkdir -p "$3"
	for f in "$1"/*.ini; do
		m=$(basename "$f" .ini)
		compgen -G "$2/*-${m#*-}.ini" >/dev/null && ln -sf "$f" "$3/"
	done
	return 0
}

# bench_build_fephp [GO_BUILD_FLAG...]: builds ./cmd/fe-php into the work
# dir -> $FEPHP_BIN; e.g. "bench_build_fephp -tags fephp_bridge" for the
# embedded backend (with the bridge .so already built; not make build).
bench_build_fephp() {
	FEPHP_BIN=$BENCH_WORK/fe-php
	log "building fe-php${*:+ ($*)}"
	(cd "$REPO_DIR" && go build "$@" -o "$FEPHP_BIN" ./cmd/fe-php)
}

# bench_free_port START: prints the first port >= START nobody listens on
# (on any address), per /proc/net/tcp{,6}.
bench_free_port() {
	local p=$1 used
	# (No strtonum: that is gawk's, and Debian's default awk may be mawk.)
	used=$(awk 'function hex(s, i, n) { for (i = 1; i <= length(s); i++) n = n * 16 + index("0123456789ABCDEF", substr(s, i, 1)) - 1; return n }
		NR > 1 && $4 == "0A" { split($2, a, ":"); print hex(toupper(a[2])) }' /proc/net/tcp /proc/net/tcp6 2>/dev/null | sort -u)
	while grep -qx "$p" <<<"$used"; do p=$((p + 1)); done
	echo "$p"
}

# bench_wait_http URL PID [SECONDS]: waits until URL answers, failing if
# PID dies first.
bench_wait_http() {
	local url=$1 pid=$2 secs=${3:-10} i
	for ((i = 0; i < secs * 20; i++)); do
		kill -0 "$pid" 2>/dev/null || return 1
		curl -fs -o /dev/null --max-time 1 "$url" && return 0
		sleep 0.05
	done
	return 1
}

# bench_check URL BYTES: fails unless GET URL is a 200 with BYTES of body.
bench_check() {
	local url=$1 want=$2 got
	got=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "$url") || die "GET $url failed"
	[[ $got == "200 $want" ]] || die "GET $url: got status/size '$got', want '200 $want'"
}

# bench_start_nginx ROOT PORT [EXTRA_SERVER_DIRECTIVES]: writes the work
# dir's own nginx.conf (nothing from /etc/nginx) and starts nginx in the
# foreground as our child -> $NGINX_PID, $NGINX_CONF. The extra directives
# go in the server block: locations (e.g. fastcgi_pass for PHP) or
# overrides of the http-level settings (e.g. "tcp_nopush off;").
bench_start_nginx() {
	local port=$2 d=$BENCH_WORK/nginx
	bench_nginx_conf "$@"
	nginx -p "$d" -e "$d/error.log" -c "$NGINX_CONF" &
	NGINX_PID=$!
	BENCH_PIDS+=("$NGINX_PID")
	bench_wait_http "http://127.0.0.1:$port/" "$NGINX_PID" || {
		cat "$d/error.log" >&2
		die "nginx did not start"
	}
	log "nginx pid $NGINX_PID on 127.0.0.1:$port ($(bench_pids "$NGINX_PID" | wc -w) processes)"
}

# bench_nginx_conf ROOT PORT [EXTRA_SERVER_DIRECTIVES]: bench_start_nginx's
# config, checked with nginx -t, without starting nginx -> $NGINX_CONF.
# Start it with: nginx -p $BENCH_WORK/nginx -e $BENCH_WORK/nginx/error.log -c $NGINX_CONF
bench_nginx_conf() {
	local root=$1 port=$2 extra=${3:-} d=$BENCH_WORK/nginx
	mkdir -p "$d/tmp"
	chmod 755 "$d"
	NGINX_CONF=$d/nginx.conf
	cat >"$NGINX_CONF" <<EOF
# fe-php bench: nginx's own config; defaults everywhere but what is named.
worker_processes auto;
pid $d/nginx.pid;
error_log $d/error.log warn;
daemon off;
events {
    worker_connections 4096;
}
http {
    types {
        text/html html htm;
        text/css css;
        application/javascript js;
        application/json json;
        image/png png;
        application/octet-stream bin;
    }
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    access_log off;
    open_file_cache off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        root $root;
$extra
    }
}
EOF
	nginx -t -q -p "$d" -e "$d/error.log" -c "$NGINX_CONF" || die "nginx -t failed; see $NGINX_CONF"
}

# bench_start_fephp CONF ADDR: starts fe-php as our child -> $FEPHP_PID.
bench_start_fephp() {
	local conf=$1 addr=$2
	"$FEPHP_BIN" run -c "$conf" 2>"$BENCH_WORK/fe-php.log" &
	FEPHP_PID=$!
	BENCH_PIDS+=("$FEPHP_PID")
	bench_wait_http "http://$addr/" "$FEPHP_PID" || {
		cat "$BENCH_WORK/fe-php.log" >&2
		die "fe-php did not start"
	}
	log "fe-php pid $FEPHP_PID on $addr"
}

# bench_start NAME WAIT_URL CMD [ARG...]: starts any server as our child,
# stderr to the work dir's NAME.log, and waits until WAIT_URL answers
# -> $STARTED_PID.
# bench_start_nginx_fpm NAME URL FPM FPM_CONF SOCK NGINX_CONF [FPM_ARGS...]
# starts php-fpm and nginx under one parent shell, so that one process tree
# holds both (its CPU is the pair's), waits for FPM's socket, and records
# FPM's master pid (beside FPM_CONF, as bench_fpm_conf writes it) to be
# stopped on exit too. Sets STARTED_PID as bench_start does.
bench_start_nginx_fpm() {
	local name=$1 url=$2 fpm=$3 fpm_conf=$4 sock=$5 nginx_conf=$6
	shift 6
	bench_start "$name" "$url" bash -c '
	"$1" "${@:5}" -y "$2" &
	for i in $(seq 100); do [ -S "$3" ] && break; sleep 0.05; done
	exec nginx -p "'"$BENCH_WORK/nginx"'" -e "'"$BENCH_WORK/nginx/error.log"'" -c "$4"
' _ "$fpm" "$fpm_conf" "$sock" "$nginx_conf" "$@"
	BENCH_PIDS+=("$(cat "$(dirname "$fpm_conf")/php-fpm.pid")")
}

bench_start() {
	local name=$1 url=$2
	shift 2
	"$@" 2>"$BENCH_WORK/$name.log" &
	STARTED_PID=$!
	BENCH_PIDS+=("$STARTED_PID")
	bench_wait_http "$url" "$STARTED_PID" || {
		cat "$BENCH_WORK/$name.log" >&2
		die "$name did not start"
	}
	log "$name pid $STARTED_PID ($url)"
}

# bench_pids PID: prints PID and all its descendants (from /proc ppid).
bench_pids() {
	# Processes may exit while we read: cat skips them; one line a process.
	{ cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v root="$1" '
		{
			pid = $1
			line = $0
			sub(/^.*\) /, "", line)   # comm may hold spaces and parens
			split(line, f, " ")
			parent[pid] = f[2]
		}
		END {
			keep[root] = 1; changed = 1
			while (changed) {
				changed = 0
				for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 }
			}
			for (p in keep) if (p in parent) printf "%s ", p
		}'
}

# bench_ticks PID...: prints utime+stime (fields 14, 15 of /proc/PID/stat,
# in clock ticks, all threads) plus cutime+cstime (16, 17: children that
# exited and were waited for, e.g. recycled php-fpm workers) summed over
# the PIDs. Summed over a whole process tree before and after a run, the
# difference is the tree's CPU during the run, children that came and went
# included.
bench_ticks() {
	local sum=0 pid stat rest f
	for pid in "$@"; do
		{ read -r stat <"/proc/$pid/stat"; } 2>/dev/null || continue # the process may be gone
		rest=${stat##*) }  # fields 3.. ; field N is word N-2
		read -r -a f <<<"$rest"
		sum=$((sum + f[11] + f[12] + f[13] + f[14]))
	done
	echo "$sum"
}

# bench_tree_ticks PID: CPU ticks of PID and its descendants.
bench_tree_ticks() {
	# shellcheck disable=SC2046
	bench_ticks $(bench_pids "$1")
}

# bench_tree_ns PID: CPU time in ns of PID and its descendants, all
# threads, from /proc/P/task/T/schedstat: nanoseconds where /proc/P/stat
# has 10 ms ticks, but threads and processes that exit are lost (no
# cutime), so use it for servers that keep their workers.
bench_tree_ns() {
	local p t v sum=0
	for p in $(bench_pids "$1"); do
		for t in /proc/"$p"/task/*/schedstat; do
			{ read -r v _ <"$t"; } 2>/dev/null || continue # the thread may be gone
			sum=$((sum + v))
		done
	done
	echo "$sum"
}

# bench_many_ticks PID...: bench_tree_ticks summed over several trees.
bench_many_ticks() {
	local p sum=0
	for p in "$@"; do sum=$((sum + $(bench_tree_ticks "$p"))); done
	echo "$sum"
}

# bench_sys_ticks: prints "busy total" ticks of the whole machine (/proc/stat).
bench_sys_ticks() {
	awk '/^cpu / { busy = $2 + $3 + $4 + $7 + $8 + $9; total = busy + $5 + $6; print busy, total; exit }' /proc/stat
}

# bench_child_ticks: CPU ticks used by this shell's waited-for children
# (bash "times", second line), i.e. the wrk runs. Call it without a
# subshell (a forked shell has no children's times): it sets CHILD_TICKS.
bench_child_ticks() {
	times >"$BENCH_WORK/times.txt"
	CHILD_TICKS=$(sed -n 2p "$BENCH_WORK/times.txt" | awk -v hz="$CLK_TCK" '{
		s = 0
		for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); s += a[1] * 60 + a[2] }
		printf "%d\n", s * hz + 0.5
	}')
}

# bench_to_us VALUE: wrk's "1.23ms" / "850.00us" / "1.02s" -> microseconds.
bench_to_us() {
	awk -v v="$1" 'BEGIN {
		n = v + 0
		if (v ~ /us$/) m = 1; else if (v ~ /ms$/) m = 1e3; else if (v ~ /m$/) m = 60e6; else if (v ~ /s$/) m = 1e6; else m = 1
		printf "%.0f\n", n * m
	}'
}

# bench_wrk URL SECONDS OUTFILE: one wrk run. wrk runs in the background
# and we wait for it, so that a signal interrupts the script at once (bash
# runs traps only after a foreground child exits); cleanup stops it.
bench_wrk() {
	[[ $BENCH_CLIENT == h2load ]] && { bench_h2load "$@"; return; }
	wrk -t"$THREADS" -c"$CONNS" -d"$2"s --latency "${BENCH_WRK_ARGS[@]}" "$1" >"$3" 2>&1 &
	BENCH_WRK_PID=$!
	wait "$BENCH_WRK_PID" || { cat "$3" >&2; die "wrk failed"; }
	BENCH_WRK_PID=
}

# bench_h2load URL SECONDS OUTFILE: bench_wrk's run with h2load
# (BENCH_CLIENT=h2load): h2load -t$THREADS -c$CONNS -D SECONDS
# BENCH_H2LOAD_ARGS URL, no warm-up inside the run (bench_measure's
# warm-up is a run of its own, so that the server CPU sampled around the
# run is spent on the requests counted). Its per-request log gives the
# p99. It appends wrk's summary lines (Requests/sec, "N requests in",
# 99%, Non-2xx) to OUTFILE, which bench_run_once reads as it reads wrk's;
# errors = requests done but not succeeded (non-2xx/3xx, reset, failed).
bench_h2load() {
	local url=$1 secs=$2 out=$3 reqlog=$3.reqlog alpn
	rm -f "$reqlog"
	h2load -t"$THREADS" -c"$CONNS" -D "$secs" --log-file="$reqlog" "${BENCH_H2LOAD_ARGS[@]}" "$url" >"$out" 2>&1 &
	BENCH_WRK_PID=$!
	wait "$BENCH_WRK_PID" || { cat "$out" >&2; die "h2load failed"; }
	BENCH_WRK_PID=
	alpn=$(awk -F': ' '/^Application protocol:/ { print $2; exit }' "$out")
	[[ -z $BENCH_H2LOAD_ALPN || $alpn == "$BENCH_H2LOAD_ALPN" ]] ||
		{ cat "$out" >&2; die "h2load spoke '$alpn', want '$BENCH_H2LOAD_ALPN'"; }
	{
		echo "# wrk-style summary (bench_h2load)"
		awk '/^finished in/ { gsub(/,/, ""); printf "Requests/sec: %s\n", $4 }
			/^requests:/ { d = $6; ok = $8; f = $10; e = d - ok; if (f > e) e = f
				printf "%d requests in %ss\n", d, secs; printf "Non-2xx or 3xx responses: %d\n", e }' secs="$secs" "$out"
		# p99 of the per-request times (3rd column, microseconds).
		cut -f3 "$reqlog" | sort -n | awk '{ v[NR] = $1 } END { if (NR) printf "  99%% %dus\n", v[int(NR * 0.99 + 0.999999)] }'
	} >>"$out"
	rm -f "$reqlog"
}

# bench_busy_cores: how many cores the whole machine keeps busy, over 1 s.
bench_busy_cores() {
	local m0 c0 m1 c1
	read -r m0 c0 < <(bench_sys_ticks)
	sleep 1
	read -r m1 c1 < <(bench_sys_ticks)
	awk -v m=$((m1 - m0)) -v c=$((c1 - c0)) -v n="$(nproc)" 'BEGIN { printf "%.2f\n", c ? m / c * n : 0 }'
}

# bench_wait_quiet: waits up to QUIET_WAIT seconds until the machine is
# idle (at most NOISE_MAX cores busy for 2 s running); our servers are idle
# between runs, so what is busy is someone else.
bench_wait_quiet() {
	local deadline=$((SECONDS + QUIET_WAIT)) busy quiet=0 said=
	while ((QUIET_WAIT > 0)); do
		busy=$(bench_busy_cores)
		if awk -v b="$busy" -v t="$NOISE_MAX" 'BEGIN { exit !(b <= t) }'; then
			((++quiet >= 2)) && return 0
			continue
		fi
		quiet=0
		if ((SECONDS >= deadline)); then
			log "machine still busy ($busy cores) after ${QUIET_WAIT}s; measuring anyway"
			return 0
		fi
		[[ -n $said ]] || log "machine busy ($busy cores used by other processes); waiting up to ${QUIET_WAIT}s"
		said=1
	done
}

# bench_measure CASE SERVER URL PID: a warm-up, then one measured wrk run
# against URL while sampling the CPU of PID's process tree; appends the
# row to BENCH_ROWS. Before the run it waits for the machine to be idle
# (bench_wait_quiet); a run during which other processes used more than
# NOISE_MAX cores is redone up to RETRIES times, and the least noisy
# attempt is kept. For RUNS > 1, call it RUNS times, alternating servers
# (so that they share the machine's slow and fast moments): bench_table
# reports the median run by req/s of each case and server.
bench_measure() {
	local case=$1 server=$2 url=$3 pid=$4 attempt row best=
	BENCH_NRUN[$case/$server]=$((${BENCH_NRUN[$case/$server]:-0} + 1))
	local run=${BENCH_NRUN[$case/$server]}
	log "$case / $server run $run: warm-up ${WARMUP}s"
	bench_wrk "$url" "$WARMUP" "$BENCH_WORK/warmup.txt"
	for ((attempt = 0; attempt <= RETRIES; attempt++)); do
		bench_wait_quiet
		bench_run_once "$case" "$server" "$url" "$pid" "$BENCH_WORK/wrk-$case-$server-$run-$attempt.txt"
		row=$BENCH_ROW
		log "$case / $server run $run: $(cut -f3 <<<"$row") req/s, p99 $(cut -f4 <<<"$row") us, $(cut -f5 <<<"$row") CPU us/req, other processes $(cut -f8 <<<"$row") cores"
		if [[ -z $best ]] || awk -v a="$(cut -f8 <<<"$row")" -v b="$(cut -f8 <<<"$best")" 'BEGIN { exit !(a < b) }'; then
			best=$row
		fi
		awk -v o="$(cut -f8 <<<"$best")" -v t="$NOISE_MAX" 'BEGIN { exit !(o <= t) }' && break
		((attempt < RETRIES)) && log "noisy run (other processes above $NOISE_MAX cores); again"
	done
	BENCH_ROWS+=("$best")
}

# bench_run_once CASE SERVER URL PID OUTFILE: one measured wrk run ->
# $BENCH_ROW, a tab-separated row of BENCH_ROWS.
bench_run_once() {
	local case=$1 server=$2 url=$3 pid=$4 out=$5
	local s0 s1 c0 c1 w0 w1 m0 m1 l0 l1 rps reqs p99 errs p x0=() x1=() i
	s0=$(bench_tree_ticks "$pid")
	l0=$(bench_many_ticks "${BENCH_LOAD_PIDS[@]}")
	for p in "${BENCH_SAMPLE_PIDS[@]}"; do x0+=("$(bench_tree_ns "$p")"); done
	bench_child_ticks
	w0=$CHILD_TICKS
	read -r m0 c0 < <(bench_sys_ticks)
	bench_wrk "$url" "$DURATION" "$out"
	read -r m1 c1 < <(bench_sys_ticks)
	bench_child_ticks
	w1=$CHILD_TICKS
	s1=$(bench_tree_ticks "$pid")
	l1=$(bench_many_ticks "${BENCH_LOAD_PIDS[@]}")
	for p in "${BENCH_SAMPLE_PIDS[@]}"; do x1+=("$(bench_tree_ns "$p")"); done
	rps=$(awk '/^Requests\/sec:/ { print $2 }' "$out")
	reqs=$(awk '/requests in/ { print $1 }' "$out")
	p99=$(awk '$1 == "99%" { print $2 }' "$out")
	errs=$(awk '/Non-2xx or 3xx responses:/ { n += $NF } /Socket errors:/ { gsub(/,/, ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$out")
	[[ -n $rps && -n $reqs && -n $p99 ]] || { cat "$out" >&2; die "cannot parse wrk output"; }
	p99=$(bench_to_us "$p99")
	# One tab-separated row; the *_cores columns are CPUs kept busy on
	# average (machine-wide busy minus server minus wrk minus
	# BENCH_LOAD_PIDS = "other").
	BENCH_ROW=$(awk -v cs="$case" -v srv="$server" -v rps="$rps" -v p99="$p99" -v reqs="$reqs" -v errs="$errs" \
		-v sd=$((s1 - s0)) -v wd=$((w1 - w0)) -v md=$((m1 - m0 - (l1 - l0))) -v td=$((c1 - c0)) -v hz="$CLK_TCK" \
		-v ncpu="$(nproc)" 'BEGIN {
			cores = td / ncpu                      # elapsed time in ticks
			printf "%s\t%s\t%.0f\t%d\t%.2f\t%.2f\t%.2f\t%.2f\t%d\t%d\n", cs, srv, rps, p99,
				sd / hz * 1e6 / reqs, sd / cores, wd / cores, (md - sd - wd) / cores, reqs, errs
		}')
	for ((i = 0; i < ${#x0[@]}; i++)); do
		BENCH_ROW+=$'\t'$(awk -v d=$((x1[i] - x0[i])) -v reqs="$reqs" 'BEGIN { printf "%.2f", d / 1e3 / reqs }')
	done
	((errs == 0)) || log "warning: $errs errors or non-2xx responses in $out"
}

# bench_perf SERVER CASE URL PID: under wrk load, (1) counts the system
# calls of PID's tree per request (perf stat on the syscall tracepoints,
# over a whole wrk run), (2) samples its CPU with perf record for
# PERF_SECONDS. Writes both next to the results file; appends a
# "server<TAB>case<TAB>syscalls/req<TAB>top syscalls" line to BENCH_SYSCALLS.
bench_perf() {
	local server=$1 case=$2 url=$3 pid=$4 data out pids wout ppid reqs
	command -v perf >/dev/null || { log "perf not installed; no profile"; return 0; }
	data=$BENCH_WORK/perf-$server-${case// /-}.data
	out=${BENCH_RESULTS%.md}-perf-$server-${case// /-}.txt
	pids=$(bench_pids "$pid" | tr ' ' ',' | sed 's/,$//')

	# (1) System calls per request.
	wout=$BENCH_WORK/wrk-perfstat-$server-${case// /-}.txt
	perf stat -x, -e 'syscalls:sys_enter_*' -p "$pids" -o "$BENCH_WORK/perfstat.csv" 2>/dev/null &
	ppid=$!
	BENCH_PERF_PIDS=("$ppid")
	sleep 0.5
	bench_wrk "$url" "$PERF_SECONDS" "$wout"
	kill -INT "$ppid" 2>/dev/null || true
	wait "$ppid" 2>/dev/null || true
	reqs=$(awk '/requests in/ { print $1 }' "$wout")
	local sc
	sc=$(awk -F, -v reqs="$reqs" '
		$3 ~ /^syscalls:sys_enter_/ && $1 + 0 > 0 {
			name = $3; sub(/^syscalls:sys_enter_/, "", name)
			n[name] = $1; total += $1
		}
		END {
			printf "%.2f\t", total / reqs
			m = 0
			for (k in n) { order[++m] = k }
			for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (n[order[j]] > n[order[i]]) { t = order[i]; order[i] = order[j]; order[j] = t }
			for (i = 1; i <= m && i <= 8; i++) if (n[order[i]] / reqs >= 0.05) printf "%s%s %.2f", (i > 1 ? ", " : ""), order[i], n[order[i]] / reqs
			printf "\n"
		}' "$BENCH_WORK/perfstat.csv")
	BENCH_SYSCALLS+=("$server	$case	$sc")

	# (2) CPU profile.
	if [[ $BENCH_CLIENT == h2load ]]; then
		h2load -t"$THREADS" -c"$CONNS" -D "$((PERF_SECONDS + 2))" "${BENCH_H2LOAD_ARGS[@]}" "$url" >/dev/null 2>&1 &
	else
		wrk -t"$THREADS" -c"$CONNS" -d"$((PERF_SECONDS + 2))"s "${BENCH_WRK_ARGS[@]}" "$url" >/dev/null 2>&1 &
	fi
	local wpid=$!
	sleep 1
	perf record -q -F 999 -g -p "$pids" -o "$data" -- sleep "$PERF_SECONDS" >/dev/null 2>&1 &
	BENCH_PERF_PIDS=("$wpid" "$!")
	wait "$!" || log "perf record failed"
	wait "$wpid" || true
	BENCH_PERF_PIDS=()
	{
		echo "# perf: $server serving $url under $BENCH_CLIENT -t$THREADS -c$CONNS${BENCH_H2LOAD_ARGS[*]:+ ${BENCH_H2LOAD_ARGS[*]}}"
		echo
		echo "## system calls per request ($reqs requests, perf stat on syscalls:sys_enter_*)"
		echo "total per request: ${sc%%	*}"
		echo "most frequent: ${sc#*	}"
		echo
		echo "## CPU profile, ${PERF_SECONDS}s at 999 Hz (cpu-clock if the VM has no PMU: kernel time"
		echo "## spent with interrupts off is then charged to the irq-enable function)"
		echo
		echo "### by DSO (user space vs kernel)"
		bench_perf_report "$data" 10 --no-children --sort dso -g none
		echo
		echo "### self time, top symbols"
		bench_perf_report "$data" 50 --no-children --sort dso,symbol -g none --percent-limit 0.5
		echo
		echo "### inclusive time (children = self + callees, then self), top symbols"
		bench_perf_report "$data" 70 --children --sort symbol -g none --percent-limit 3
	} >"$out"
	log "profile: $out"
}

# bench_perf_each CASE...: bench_perf for each case on every server of the
# script's SERVERS ("name port pid" each), at http://127.0.0.1:PORT/CASE.
bench_perf_each() {
	local case s name port pid
	for case in "$@"; do
		for s in "${SERVERS[@]}"; do
			read -r name port pid <<<"$s"
			bench_perf "$name" "$case" "http://127.0.0.1:$port/$case" "$pid"
		done
	done
}

# bench_syscall_table: BENCH_SYSCALLS as Markdown.
bench_syscall_table() {
	((${#BENCH_SYSCALLS[@]} > 0)) || return 0
	echo "System calls per request (separate ${PERF_SECONDS}s run under perf stat; profiles in the"
	echo "*-perf-*.txt files next to this one):"
	echo
	echo "| server | file | syscalls/req | most frequent (per request) |"
	echo "|---|---|---:|---|"
	printf '%s\n' "${BENCH_SYSCALLS[@]}" | awk -F'\t' '{ printf "| %s | %s | %s | %s |\n", $1, $2, $3, $4 }'
}

# bench_machine: prints the machine and the concurrent load, as Markdown.
bench_machine() {
	local builds
	builds=$(ps -eo ni=,comm= | awk '$2 ~ /^(make|cc1|cc1plus|gcc|ld|go|compile|link)$/ { n++; s = s " " $2 "(nice " $1 ")" } END { print (n ? n ":" s : "none") }')
	echo "- command: \`$BENCH_CMD\` (DURATION=$DURATION WARMUP=$WARMUP CONNS=$CONNS THREADS=$THREADS RUNS=$RUNS)"
	echo "- date: $(date -Is)"
	echo "- nproc: $(nproc); CPU: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
	echo "- kernel: $(uname -sr); sched_autogroup: $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo n/a)"
	echo "- $(go version)"
	echo "- $(nginx -v 2>&1)"
	if [[ $BENCH_CLIENT == h2load ]]; then
		echo "- $(h2load --version 2>&1 | head -1); $(openssl version 2>&1)"
	else
		echo "- $(wrk -v 2>&1 | head -1 | cut -d' ' -f1-2)"
	fi
	echo "- fe-php: $(cd "$REPO_DIR" && git rev-parse --short HEAD 2>/dev/null)$(cd "$REPO_DIR" && git diff --quiet HEAD -- . 2>/dev/null || echo ' (+ uncommitted changes)')"
	echo "- load average before: $(cut -d' ' -f1-3 /proc/loadavg); compiler processes running: $builds"
}

# bench_medians: BENCH_ROWS reduced to the median run (by req/s; the lower
# one for an even count) of each case and server, in first-seen order,
# with the number of runs as the 11th field (the BENCH_SAMPLE_PIDS fields,
# if any, follow it).
bench_medians() {
	printf '%s\n' "${BENCH_ROWS[@]}" | awk -F'\t' '
		{
			k = $1 SUBSEP $2
			if (!(k in n)) order[++nk] = k
			row[k, ++n[k]] = $0; rps[k, n[k]] = $3 + 0
		}
		END {
			for (i = 1; i <= nk; i++) {
				k = order[i]; m = n[k]
				for (a = 1; a <= m; a++) idx[a] = a
				for (a = 1; a <= m; a++) for (b = a + 1; b <= m; b++)
					if (rps[k, idx[b]] < rps[k, idx[a]]) { t = idx[a]; idx[a] = idx[b]; idx[b] = t }
				nf = split(row[k, idx[int((m + 1) / 2)]], f, "\t")
				out = f[1]
				for (j = 2; j <= 10; j++) out = out "\t" f[j]
				out = out "\t" m
				for (j = 11; j <= nf; j++) out = out "\t" f[j]
				print out
			}
		}'
}

# bench_table: the median rows as Markdown, with a fe-php/nginx ratio row per
# case (req/s, p99, CPU per request), then the CPU details.
bench_table() {
	bench_medians | awk -F'\t' -v client="$BENCH_CLIENT" '
		{
			c[NR] = $1; s[NR] = $2; rps[NR] = $3; p99[NR] = $4; cpu[NR] = $5
			sc[NR] = $6; wc[NR] = $7; oc[NR] = $8; req[NR] = $9; err[NR] = $10; runs[NR] = $11
			if (!($1 in seen)) { seen[$1] = 1; order[++nc] = $1 }
			idx[$1, $2] = NR
		}
		function ms(us) { return sprintf("%.2f ms", us / 1000) }
		END {
			print "| file | server | req/s | p99 | CPU us/req |"
			print "|---|---|---:|---:|---:|"
			for (k = 1; k <= nc; k++) {
				for (i = 1; i <= NR; i++) if (c[i] == order[k])
					printf "| %s | %s | %d | %s | %.1f |\n", c[i], s[i], rps[i], ms(p99[i]), cpu[i]
				a = idx[order[k], "fe-php"]
				split("nginx caddy", peers, " ")
				for (p = 1; p <= 2; p++) {
					b = idx[order[k], peers[p]]
					if (a && b)
						printf "| %s | **fe-php/%s** | **%.2fx** | %.2fx | **%.2fx** |\n", order[k], peers[p],
							rps[a] / rps[b], p99[a] / p99[b], cpu[a] / cpu[b]
				}
			}
			print ""
			print "CPU kept busy during each measured run, in cores (of the machine'"'"'s total):"
			print ""
			print "| file | server | server | " client " | other processes | requests | errors | median of |"
			print "|---|---|---:|---:|---:|---:|---:|---:|"
			for (i = 1; i <= NR; i++) {
				printf "| %s | %s | %.2f | %.2f | %.2f | %d | %d | %d runs |\n", c[i], s[i], sc[i], wc[i], oc[i], req[i], err[i], runs[i]
				if (oc[i] > 0.15) noisy = 1
				if (err[i] > 0) errors = 1
			}
			if (noisy) {
				print ""
				print "**Warning: other processes used more than 0.15 cores during some runs: the machine"
				print "was not quiet and those numbers are distorted (see \"compiler processes\" below).**"
			}
			if (errors) {
				print ""
				print "**Warning: some runs had socket errors or non-2xx responses.**"
			}
		}'
}

# bench_perf_report DATA N ARGS...: the first N lines of "perf report
# --stdio ARGS" on DATA, without its comments and blank lines.
bench_perf_report() {
	local data=$1 n=$2
	shift 2
	perf report -i "$data" --stdio "$@" 2>/dev/null | grep -v '^#' | grep -v '^$' | head -"$n" || true
}

# bench_fpm_conf NAME SOCKET: writes an FPM master config with one static
# pool of $WORKERS children listening on SOCKET, in $BENCH_WORK/NAME, and
# prints its path.
bench_fpm_conf() {
	local name=$1 sock=$2 d=$BENCH_WORK/$1
	mkdir -p "$d"
	cat >"$d/php-fpm.conf" <<EOF
[global]
pid = $d/php-fpm.pid
error_log = $d/php-fpm.log
daemonize = no

[bench]
listen = $sock
listen.mode = 0666
pm = static
pm.max_children = $WORKERS
pm.max_requests = 0
EOF
	echo "$d/php-fpm.conf"
}
