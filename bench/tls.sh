#!/usr/bin/env bash
# bench/tls.sh: HTTPS (HTTP/2 and HTTP/1.1 over TLS) through fe-php against
# nginx with the same certificate, same files, same machine, same h2load
# load. See bench/README.md.
#
#	bash bench/tls.sh                        # 2 s warm-up + 10 s per case and server
#	RUNS=3 bash bench/tls.sh                 # median of 3 interleaved runs
#	PROTOS=h2 CASES=hello.php bash bench/tls.sh
#	PROTOS="h2 h1" bash bench/tls.sh         # without the plain-HTTP yardstick
#	PERF=1 bash bench/tls.sh                 # plus syscalls/request and a perf profile per case
#
# Cases: 1k.html (1 KiB static file) and hello.php (one echo), each over
# h2 (TLS, ALPN h2, h2load -m STREAMS streams a connection), h1 (TLS, ALPN
# http/1.1, h2load --h1, one request at a time a connection) and http
# (plain HTTP/1.1, h2load --h1: what TLS adds to each server). Servers, one
# process tree each, both serving both cases:
#   nginx    nginx (listen ... ssl http2) with fastcgi_pass for .php to its
#            own php-fpm pool (pm = static, WORKERS children), both under
#            one parent, as in php.sh
#   fe-php   fe-php's [server.tls] listener: static backend for the file,
#            a suffix ".php" rule to the embedded backend (worker_pool_size
#            = WORKERS), compression at its default (on)
# The same self-signed ECDSA P-256 certificate for both.
#
# Prints a Markdown table and writes it to bench/results/tls-DATE.md.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_init tls "$@"
bench_need go nginx h2load curl openssl php-fpm8.2
[[ $PERF == 1 ]] && bench_need perf

WORKERS=${WORKERS:-4}                  # PHP workers on both sides (php.sh's default)
CASES=${CASES:-1k.html hello.php}
PROTOS=${PROTOS:-h2 h1 http}
STREAMS=${STREAMS:-10}                 # h2load -m for h2: concurrent streams a connection
FPM=$(command -v php-fpm8.2)
BENCH_CLIENT=h2load

DOCROOT=$BENCH_WORK/www
mkdir -p "$DOCROOT"
chmod 755 "$DOCROOT"
head -c 1024 /dev/zero | tr '\0' 'a' >"$DOCROOT/1k.html"
echo '<?php echo "Hello, World!";' >"$DOCROOT/hello.php"
echo '<!doctype html><title>bench</title>' >"$DOCROOT/index.html"
chmod 644 "$DOCROOT"/*

# One certificate for both servers: self-signed ECDSA P-256 (what a
# current Let's Encrypt ECDSA certificate has), for 127.0.0.1.
CERT=$BENCH_WORK/cert.pem
KEY=$BENCH_WORK/key.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
	-subj /CN=localhost -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \
	-keyout "$KEY" -out "$CERT" 2>"$BENCH_WORK/openssl.log" || { cat "$BENCH_WORK/openssl.log" >&2; die "openssl failed"; }
chmod 644 "$CERT" "$KEY"

# The embedded backend needs the bridge, embedded by the fephp_bridge tag
# (internal/embed/bridge/fephp-bridge.so must exist: make bridge).
[[ -f $REPO_DIR/internal/embed/bridge/fephp-bridge.so ]] ||
	die "internal/embed/bridge/fephp-bridge.so is missing: run make build once (it builds PHP and the bridge)"
bench_build_fephp -tags fephp_bridge

# FPM as in php.sh: Debian's php.ini and conf.d, OPcache on, timestamps off.
FPM_ARGS=(-c /etc/php/8.2/fpm/php.ini -R -d opcache.enable=1 -d opcache.validate_timestamps=0
	-d opcache.memory_consumption=128)

# nginx: plain HTTP on PORT_A (only for the start-up check), HTTPS + h2 on TLS_A.
PORT_A=$(bench_free_port "${PORT_A:-18280}")
TLS_A=$(bench_free_port $((PORT_A + 1)))
SOCK_A=$BENCH_WORK/fpm-a.sock
CONF_A=$(bench_fpm_conf fpm-a "$SOCK_A")
bench_nginx_conf "$DOCROOT" "$PORT_A" "        listen 127.0.0.1:$TLS_A ssl http2;
        ssl_certificate $CERT;
        ssl_certificate_key $KEY;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:10m;
        location ~ \\.php\$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass unix:$SOCK_A;
        }"
# nginx + FPM under one parent, so that one process tree holds both (php.sh's way).
bench_start_nginx_fpm nginx "http://127.0.0.1:$PORT_A/hello.php" "$FPM" "$CONF_A" "$SOCK_A" "$NGINX_CONF" "${FPM_ARGS[@]}"
PID_A=$STARTED_PID

# fe-php: plain HTTP on PORT_B (https_redirect off, so that it serves the
# same files as nginx's plain listener, for the http yardstick), HTTPS on TLS_B.
PORT_B=$(bench_free_port $((TLS_A + 1)))
TLS_B=$(bench_free_port $((PORT_B + 1)))
FEPHP_CONF=$BENCH_WORK/fe-php.toml
cat >"$FEPHP_CONF" <<EOF
# fe-php bench: defaults everywhere but what is named.
[server]
listen = "127.0.0.1:$PORT_B"
log_level = "warn"
https_redirect = false
# One worker process: WORKERS PHP threads in all, as FPM's WORKERS children.
workers = 1

[server.tls]
listen = "127.0.0.1:$TLS_B"
cert_file = "$CERT"
key_file = "$KEY"

[server.access_log]
output = "off"

[php]
document_root = "$DOCROOT"
worker_pool_size = $WORKERS

[php.opcache]
enable = true
validate_timestamps = false

[backend]
default_backend = "static"

[[backend.routing_rules]]
pattern = { type = "suffix", value = ".php" }
backend = "embedded"

[backend.static_files]
root = "$DOCROOT"
EOF
"$FEPHP_BIN" check -c "$FEPHP_CONF" >/dev/null
bench_start fe-php "http://127.0.0.1:$PORT_B/" "$FEPHP_BIN" run -c "$FEPHP_CONF"
PID_B=$STARTED_PID

# name, HTTPS port, plain HTTP port, pid of each server measured.
SERVERS=("nginx $TLS_A $PORT_A $PID_A" "fe-php $TLS_B $PORT_B $PID_B")

# tls_check URL BYTES HTTPVER: a 200 with BYTES of body over HTTP version
# HTTPVER (2 or 1.1), certificate not verified (self-signed); URL may be
# plain http (then 1.1).
tls_check() {
	local got want="200 $2 $3" flag=--http2
	[[ $3 == 1.1 ]] && flag=--http1.1
	got=$(curl -sk "$flag" -o /dev/null -w '%{http_code} %{size_download} %{http_version}' "$1") || die "GET $1 failed"
	[[ $got == "$want" ]] || die "GET $1: got status/size/version '$got', want '$want'"
}

MACHINE=$(bench_machine)
TLS_INFO=()

for case in $CASES; do
	want=$(curl -sk "https://127.0.0.1:$TLS_A/$case" | wc -c)
	for proto in $PROTOS; do
		case $proto in
		h2) BENCH_H2LOAD_ARGS=(-m "$STREAMS"); BENCH_H2LOAD_ALPN=h2; ver=2 scheme=https ;;
		h1) BENCH_H2LOAD_ARGS=(--h1 -m 1); BENCH_H2LOAD_ALPN=http/1.1; ver=1.1 scheme=https ;;
		http) BENCH_H2LOAD_ARGS=(--h1 -m 1); BENCH_H2LOAD_ALPN=; ver=1.1 scheme=http ;;
		*) die "PROTOS: unknown protocol '$proto' (h2, h1, http)" ;;
		esac
		for s in "${SERVERS[@]}"; do
			read -r name port plain pid <<<"$s"
			[[ $scheme == http ]] && port=$plain
			tls_check "$scheme://127.0.0.1:$port/$case" "$want" "$ver"
		done
		for ((run = 1; run <= RUNS; run++)); do
			for s in "${SERVERS[@]}"; do
				read -r name port plain pid <<<"$s"
				[[ $scheme == http ]] && port=$plain
				bench_measure "$case $proto" "$name" "$scheme://127.0.0.1:$port/$case" "$pid"
				if ((run == 1)) && [[ $scheme == https ]]; then
					# What was negotiated (from the warm-up run's output).
					TLS_INFO+=("$case $proto / $name: $(awk -F': ' '/^TLS Protocol:/ { p = $2 } /^Cipher:/ { c = $2 } /^Server Temp Key:/ { k = $2 } /^Application protocol:/ { a = $2 } END { printf "%s, %s, %s, ALPN %s", p, c, (k ? k : "-"), a }' "$BENCH_WORK/warmup.txt")")
				fi
			done
		done
		if [[ $PERF == 1 ]]; then
			for s in "${SERVERS[@]}"; do
				read -r name port plain pid <<<"$s"
				[[ $scheme == http ]] && port=$plain
				bench_perf "$name" "$case $proto" "$scheme://127.0.0.1:$port/$case" "$pid"
			done
		fi
	done
done

{
	echo "# HTTPS: fe-php vs nginx, HTTP/2 and HTTP/1.1 over TLS ($BENCH_DATE)"
	echo
	echo "h2load -t$THREADS -c$CONNS -D $DURATION (h2: TLS, -m $STREAMS streams a connection; h1: TLS, --h1 -m 1;"
	echo "http: plain HTTP/1.1, --h1 -m 1) after a separate ${WARMUP}s warm-up run, to 127.0.0.1,"
	echo "keep-alive (each run opens its $CONNS connections once); median of $RUNS run(s) by req/s,"
	echo "servers alternating. p99 from h2load's per-request log. CPU us/req = server CPU (all"
	echo "processes of its tree: nginx + its FPM; fe-php with its embedded PHP) during the run /"
	echo "requests completed. Ratio rows: fe-php / nginx (req/s: higher is better for fe-php; p99 and"
	echo "CPU: lower is)."
	echo
	bench_table
	echo
	if [[ $PERF == 1 ]]; then
		bench_syscall_table
		echo
	fi
	echo "Negotiated (h2load's report of the warm-up run):"
	echo
	printf -- '- %s\n' "${TLS_INFO[@]}"
	echo
	echo "Servers (same self-signed ECDSA P-256 certificate):"
	echo
	echo "- nginx: worker_processes auto ($(($(bench_pids "$PID_A" | wc -w) - 2 - WORKERS)) workers), listen ssl http2,"
	echo "  ssl_protocols TLSv1.2 TLSv1.3, ssl_session_cache shared:SSL:10m, keepalive_requests 100000,"
	echo "  access_log off, sendfile/tcp_nopush on, open_file_cache off; .php to php-fpm8.2"
	echo "  (pm = static, $WORKERS children, OPcache on, validate_timestamps off) over a Unix socket."
	echo "- fe-php: [server.tls] with the same cert/key, HTTP/2 on (default), https_redirect = false (for"
	echo "  the plain-HTTP rows), compression on (default;"
	echo "  h2load sends no Accept-Encoding, so nothing is compressed), access log off, static backend"
	echo "  for the file, a suffix \".php\" rule to the embedded backend (worker_pool_size = $WORKERS,"
	echo "  OPcache on, validate_timestamps off), GOMAXPROCS = nproc."
	echo
	echo "Machine:"
	echo
	echo "$MACHINE"
} | tee "$BENCH_RESULTS"
log "results: $BENCH_RESULTS"
