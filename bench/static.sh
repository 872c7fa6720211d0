#!/usr/bin/env bash
# bench/static.sh: fe-php's static backend against nginx, same files, same
# machine, same wrk load. See bench/README.md.
#
#	bash bench/static.sh                     # 2 s warm-up + 10 s per case
#	DURATION=30 CONNS=64 RUNS=3 bash bench/static.sh
#	PERF=1 bash bench/static.sh              # plus syscalls/request and a perf profile per case
#	BASELINE=1 bash bench/static.sh          # plus plain Go net/http servers as yardsticks
#
# Prints a Markdown table and writes it to bench/results/static-DATE.md.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_init static "$@"
bench_need go nginx wrk curl
[[ $CADDY == 1 ]] && bench_need caddy
[[ $PERF == 1 ]] && bench_need perf

# Docroot: a 1 KiB page (fe-php reads it into memory and writes once) and
# a 256 KiB file (fe-php: http.ServeContent, i.e. sendfile; nginx: sendfile).
DOCROOT=$BENCH_WORK/www
mkdir -p "$DOCROOT"
chmod 755 "$DOCROOT"
head -c 1024 /dev/zero | tr '\0' 'a' >"$DOCROOT/1k.html"
head -c $((256 * 1024)) /dev/urandom >"$DOCROOT/256k.bin"
echo '<!doctype html><title>bench</title>' >"$DOCROOT/index.html"
chmod 644 "$DOCROOT"/*

bench_build_fephp

PORT_A=$(bench_free_port "${PORT_A:-18080}")
bench_start_nginx "$DOCROOT" "$PORT_A"

PORT_B=$(bench_free_port "${PORT_B:-$((PORT_A + 1))}")
FEPHP_CONF=$BENCH_WORK/fe-php.toml
cat >"$FEPHP_CONF" <<EOF
# fe-php bench: defaults everywhere but what is named.
[server]
listen = "127.0.0.1:$PORT_B"
log_level = "warn"

[server.access_log]
output = "off"

[backend]
default_backend = "static"
enable_hybrid = false

[backend.static_files]
root = "$DOCROOT"
EOF
"$FEPHP_BIN" check -c "$FEPHP_CONF" >/dev/null
bench_start_fephp "$FEPHP_CONF" "127.0.0.1:$PORT_B"

# name, port, pid of each server measured.
SERVERS=("nginx $PORT_A $NGINX_PID" "fe-php $PORT_B $FEPHP_PID")

if [[ $CADDY == 1 ]]; then
	# Caddy's file_server, as its docs show it; no admin endpoint, no
	# automatic HTTPS, its state under the work dir.
	PORT_C=$(bench_free_port $((PORT_B + 1)))
	cat >"$BENCH_WORK/Caddyfile" <<EOF
{
	admin off
	auto_https off
}
http://127.0.0.1:$PORT_C {
	root * $DOCROOT
	file_server
}
EOF
	bench_start caddy "http://127.0.0.1:$PORT_C/index.html" \
		env XDG_DATA_HOME="$BENCH_WORK/caddy" XDG_CONFIG_HOME="$BENCH_WORK/caddy" caddy run --config "$BENCH_WORK/Caddyfile" --adapter caddyfile
	SERVERS+=("caddy $PORT_C $STARTED_PID")
fi

if [[ $BASELINE == 1 ]]; then
	# Yardsticks: Go's http.FileServer, and net/http writing bytes from
	# memory (see bench/gobaseline/main.go).
	(cd "$REPO_DIR" && go build -o "$BENCH_WORK/gobaseline" ./bench/gobaseline)
	port=$PORT_B
	for mode in fileserver memory memory-http1; do
		port=$(bench_free_port $((port + 1)))
		bench_start "go-$mode" "http://127.0.0.1:$port/" \
			"$BENCH_WORK/gobaseline" -listen "127.0.0.1:$port" -root "$DOCROOT" -mode "$mode"
		SERVERS+=("go-$mode $port $STARTED_PID")
	done
fi

MACHINE=$(bench_machine)

FILES=(1k.html 256k.bin)
for file in "${FILES[@]}"; do
	size=$(stat -c %s "$DOCROOT/$file")
	for s in "${SERVERS[@]}"; do
		read -r name port pid <<<"$s"
		bench_check "http://127.0.0.1:$port/$file" "$size"
	done
	# Servers alternate within each round, so that they share the
	# machine's good and bad moments.
	for ((run = 1; run <= RUNS; run++)); do
		for s in "${SERVERS[@]}"; do
			read -r name port pid <<<"$s"
			bench_measure "$file" "$name" "http://127.0.0.1:$port/$file" "$pid"
		done
	done
done

[[ $PERF == 1 ]] && bench_perf_each "${FILES[@]}"

{
	echo "# Static files: fe-php vs nginx$([[ $CADDY == 1 ]] && echo " and Caddy") ($BENCH_DATE)"
	echo
	echo "wrk -t$THREADS -c$CONNS -d${DURATION}s --latency, after a ${WARMUP}s warm-up, over keep-alive"
	echo "connections to 127.0.0.1; median of $RUNS run(s) by req/s, servers alternating. CPU us/req ="
	echo "server CPU (utime+stime+cutime+cstime of all its processes, /proc/PID/stat) during the"
	echo "run / requests completed. Ratio rows: fe-php / nginx (req/s: higher is better for"
	echo "fe-php; p99 and CPU: lower is)."
	echo
	bench_table
	echo
	if [[ $PERF == 1 ]]; then
		bench_syscall_table
		echo
	fi
	echo "Servers:"
	echo
	echo "- nginx: worker_processes auto ($(($(bench_pids "$NGINX_PID" | wc -w) - 1)) workers), sendfile on, tcp_nopush on,"
	echo "  keepalive_requests 100000, access_log off, open_file_cache off (nginx's default), rest default."
	echo "- fe-php: default_backend = \"static\", access log off, log_level warn, rest default"
	echo "  (precompressed on, but wrk sends no Accept-Encoding), GOMAXPROCS = nproc."
	if [[ $CADDY == 1 ]]; then
		echo "- caddy: $(caddy version | head -1) (Debian), file_server, admin off, auto_https off, rest default."
	fi
	if [[ $BASELINE == 1 ]]; then
		echo "- go-fileserver: Go's http.FileServer on the same root; go-memory: net/http writing"
		echo "  the file's bytes from memory (bench/gobaseline): the floor of a net/http server;"
		echo "  go-memory-http1: the same on fe-php's HTTP/1.1 loop (internal/http1), its floor."
	fi
	echo
	echo "Machine:"
	echo
	echo "$MACHINE"
} | tee "$BENCH_RESULTS"
log "results: $BENCH_RESULTS"
