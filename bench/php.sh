#!/usr/bin/env bash
# bench/php.sh: PHP through fe-php (embedded and fastcgi backends) against
# nginx + PHP-FPM, same scripts, same machine, same wrk load. See
# bench/README.md.
#
#	bash bench/php.sh                       # 2 s warm-up + 10 s per case
#	WORKERS=8 DURATION=30 RUNS=3 bash bench/php.sh
#	CASES="hello.php" bash bench/php.sh
#	LIBPHP_B=/usr/local/php-zts-x/lib/libphp.so bash bench/php.sh
#	EMBED_MODULES=fpm bash bench/php.sh      # + embedded with FPM's modules only
#	FCGI_PER_CORE=1 bash bench/php.sh        # + fastcgi, a worker per CPU, GOMAXPROCS=1
#	PERF=1 bash bench/php.sh                 # + syscalls/request and a perf profile per row
#
# Servers, all with WORKERS PHP workers (default 4) and OPcache on
# (validate_timestamps off):
#   nginx+fpm     nginx (fastcgi_pass to a Unix socket, its default: a new
#                 FastCGI connection per request) + php-fpm, pm = static
#   fe-php-fcgi   fe-php's fastcgi backend + an identical php-fpm pool
#                 (kept-open connections, pool max_size = WORKERS)
#   fe-php-embed  fe-php's embedded backend, worker_pool_size = WORKERS
#   fe-php-embed-B  with LIBPHP_B set: the same on another libphp build (a
#                 PHP build change measured against the current one)
#   fe-php-embed-fpm-modules  with EMBED_MODULES=fpm: the embedded backend
#                 loading only the modules this machine's FPM loads
#   fe-php-fcgi-percore  with FCGI_PER_CORE=1: fe-php-fcgi with one worker
#                 process per CPU on GOMAXPROCS=1, its own FPM pool
# Server CPU is each whole process tree's: nginx's and FPM's together.
#
# Prints a Markdown table and writes it to bench/results/php-DATE.md.

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

bench_init php "$@"
bench_need go nginx wrk curl php-fpm8.2 make
[[ $PERF == 1 ]] && bench_need perf

WORKERS=${WORKERS:-4}
CASES=${CASES:-hello.php page.php api.php}
FPM=$(command -v php-fpm8.2)

DOCROOT=$BENCH_WORK/www
mkdir -p "$DOCROOT"
chmod 755 "$DOCROOT"
echo '<?php echo "Hello, World!";' >"$DOCROOT/hello.php"
# A page that is mostly PHP: a 200-row HTML table from an array, with the
# escaping and formatting a real template does.
cat >"$DOCROOT/page.php" <<'PHP'
<?php
$rows = [];
for ($i = 1; $i <= 200; $i++) {
    $rows[] = ['id' => $i, 'name' => "Product <$i> & co", 'sku' => sprintf('SKU-%06d', $i * 7919 % 1000000),
        'price' => $i * 3.14159, 'stock' => ($i * 37) % 101, 'updated' => 1700000000 + $i * 86400];
}
usort($rows, fn($a, $b) => $b['price'] <=> $a['price']);
$h = fn($s) => htmlspecialchars((string) $s, ENT_QUOTES, 'UTF-8');
?><!doctype html>
<html><head><meta charset="utf-8"><title>Products</title></head><body>
<table><thead><tr><th>#</th><th>Name</th><th>SKU</th><th>Price</th><th>Stock</th><th>Updated</th></tr></thead><tbody>
<?php foreach ($rows as $r): ?>
<tr class="<?= $r['stock'] > 50 ? 'ok' : 'low' ?>"><td><?= $r['id'] ?></td><td><?= $h($r['name']) ?></td><td><?= $h($r['sku']) ?></td><td><?= number_format($r['price'], 2) ?></td><td><?= $r['stock'] ?></td><td><?= date('Y-m-d', $r['updated']) ?></td></tr>
<?php endforeach ?>
</tbody></table></body></html>
PHP
# A JSON API answer: 50 records, encoded.
cat >"$DOCROOT/api.php" <<'PHP'
<?php
header('Content-Type: application/json');
$items = [];
for ($i = 1; $i <= 50; $i++) {
    $items[] = ['id' => $i, 'title' => "Item $i", 'tags' => ['a', 'b', (string) ($i % 7)],
        'price' => round($i * 1.25, 2), 'available' => $i % 3 !== 0];
}
echo json_encode(['page' => (int) ($_GET['page'] ?? 1), 'count' => count($items), 'items' => $items]);
PHP
echo "<!doctype html><title>bench</title>" >"$DOCROOT/index.html"
chmod 644 "$DOCROOT"/*

log "building fe-php with the embedded backend (make build)"
(cd "$REPO_DIR" && make -s build >&2)
FEPHP_BIN=$REPO_DIR/bin/fe-php

# FPM runs on Debian's own php.ini and conf.d (its extensions, OPcache
# among them), as the embedded PHP runs on its build's copy of them: each
# side is the distribution's PHP, with OPcache's timestamps off on both.
FPM_ARGS=(-c /etc/php/8.2/fpm/php.ini -R -d opcache.enable=1 -d opcache.validate_timestamps=0
	-d opcache.memory_consumption=128)

# nginx + FPM under one parent, so that one process tree holds both.
PORT_A=$(bench_free_port "${PORT_A:-18180}")
SOCK_A=$BENCH_WORK/fpm-a.sock
CONF_A=$(bench_fpm_conf fpm-a "$SOCK_A")
bench_start_nginx "$DOCROOT" "$PORT_A" "        location ~ \\.php\$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass unix:$SOCK_A;
        }"
# bench_start_nginx ran nginx already; stop it and run both under a shell.
bench_stop "$NGINX_PID"
BENCH_PIDS=()
bench_start_nginx_fpm nginx+fpm "http://127.0.0.1:$PORT_A/hello.php" "$FPM" "$CONF_A" "$SOCK_A" "$NGINX_CONF" "${FPM_ARGS[@]}"
PID_A=$STARTED_PID

# fephp_conf PORT DEFAULT_BACKEND EXTRA_PHP_KEYS: one worker process (or
# CONF_WORKERS), WORKERS PHP threads and FastCGI connections in all (the
# connections split between the workers).
fephp_conf() {
	local port=$1 default=$2 extra=$3 workers=${CONF_WORKERS:-1}
	cat <<EOF
[server]
listen = "127.0.0.1:$port"
log_level = "warn"
# One worker process: WORKERS PHP threads in all, as FPM's WORKERS children.
workers = $workers
[server.access_log]
output = "off"
[php]
document_root = "$DOCROOT"
worker_pool_size = $WORKERS
$extra
[php.opcache]
enable = true
validate_timestamps = false
[backend]
default_backend = "$default"
enable_hybrid = false
[backend.connection_pool]
max_size = $((WORKERS / workers))
EOF
}

# start_fephp_fcgi NAME PORT [VAR=VALUE...]: fe-php's fastcgi backend
# (fephp_conf's, with CONF_WORKERS) and an FPM pool of its own, started
# under one parent so that one process tree holds both, the environment
# VAR=VALUE... added -> STARTED_PID.
start_fephp_fcgi() {
	local name=$1 port=$2 sock=$BENCH_WORK/$1.sock conf
	shift 2
	conf=$(bench_fpm_conf "fpm-$name" "$sock")
	fephp_conf "$port" fastcgi "fpm_socket = \"$sock\"" >"$BENCH_WORK/$name.toml"
	bench_start "$name" "http://127.0.0.1:$port/hello.php" env "$@" bash -c '
		"$1" "${@:6}" -y "$2" &
		for i in $(seq 100); do [ -S "$3" ] && break; sleep 0.05; done
		exec "$4" run -c "$5"
	' _ "$FPM" "$conf" "$sock" "$FEPHP_BIN" "$BENCH_WORK/$name.toml" "${FPM_ARGS[@]}"
	BENCH_PIDS+=("$(cat "$BENCH_WORK/fpm-$name/php-fpm.pid")")
}

# fe-php's fastcgi backend + its own FPM.
PORT_B=$(bench_free_port $((PORT_A + 1)))
start_fephp_fcgi fe-php-fcgi "$PORT_B"
PID_B=$STARTED_PID

# fe-php's embedded backend.
PORT_C=$(bench_free_port $((PORT_B + 1)))
fephp_conf "$PORT_C" embedded "" >"$BENCH_WORK/fe-php-embed.toml"
bench_start fe-php-embed "http://127.0.0.1:$PORT_C/hello.php" "$FEPHP_BIN" run -c "$BENCH_WORK/fe-php-embed.toml"
PID_C=$STARTED_PID

SERVERS=("nginx+fpm $PORT_A $PID_A" "fe-php-fcgi $PORT_B $PID_B" "fe-php-embed $PORT_C $PID_C")

# fe-php's fastcgi backend as nginx runs: one worker process per CPU, each
# on one Go processor (GOMAXPROCS=1), the WORKERS FastCGI connections split
# between them, in front of its own FPM pool (FCGI_PER_CORE=1).
if [[ -n ${FCGI_PER_CORE:-} ]]; then
	NCPU=$(nproc)
	((WORKERS % NCPU == 0)) || die "FCGI_PER_CORE: WORKERS ($WORKERS) must split evenly over $NCPU CPUs"
	PORT_F=$(bench_free_port $((PORT_C + 11)))
	CONF_WORKERS=$NCPU start_fephp_fcgi fe-php-fcgi-percore "$PORT_F" GOMAXPROCS=1
	SERVERS+=("fe-php-fcgi-percore $PORT_F $STARTED_PID")
fi

# The same embedded backend on another build of PHP, to measure a change to
# the build (flags, patches) in the same interleaved run.
if [[ -n ${LIBPHP_B:-} ]]; then
	LIBPHP_B=$(realpath -e "$LIBPHP_B") || die "LIBPHP_B: no such file"
	PORT_D=$(bench_free_port $((PORT_C + 1)))
	fephp_conf "$PORT_D" embedded "libphp_path = $(bench_toml_str "$LIBPHP_B")" >"$BENCH_WORK/fe-php-embed-B.toml"
	bench_start fe-php-embed-B "http://127.0.0.1:$PORT_D/hello.php" "$FEPHP_BIN" run -c "$BENCH_WORK/fe-php-embed-B.toml"
	SERVERS+=("fe-php-embed-B $PORT_D $STARTED_PID")
fi

# The embedded backend with the modules FPM loads here and no others
# (EMBED_MODULES=fpm): fe-php's build enables every module it has (48),
# FPM those whose php8.2-* packages are installed. The same libphp, with
# PHP_INI_SCAN_DIR naming links to the build's ini files of FPM's modules.
if [[ ${EMBED_MODULES:-} == fpm ]]; then
	ZTS_INI=$(realpath -e "${PHP_ZTS:-/usr/local/php-zts-embed}/etc/php.ini") || die "EMBED_MODULES: no php.ini of the ZTS build"
	ZTS_CONFD=$(dirname "$ZTS_INI")/conf.d
	FPM_CONFD=/etc/php/8.2/fpm/conf.d
	bench_module_subset "$ZTS_CONFD" "$FPM_CONFD" "$BENCH_WORK/fpm-modules.d"
	log "fe-php-embed-fpm-modules: $(ls "$BENCH_WORK/fpm-modules.d" | wc -l) of $(ls "$ZTS_CONFD" | wc -l) modules (FPM's conf.d has $(ls "$FPM_CONFD" | wc -l) ini files)"
	PORT_E=$(bench_free_port $((${PORT_D:-$PORT_C} + 1)))
	fephp_conf "$PORT_E" embedded "" >"$BENCH_WORK/fe-php-embed-fpm-modules.toml"
	bench_start fe-php-embed-fpm-modules "http://127.0.0.1:$PORT_E/hello.php" \
		env PHP_INI_SCAN_DIR="$BENCH_WORK/fpm-modules.d" "$FEPHP_BIN" run -c "$BENCH_WORK/fe-php-embed-fpm-modules.toml"
	SERVERS+=("fe-php-embed-fpm-modules $PORT_E $STARTED_PID")
elif [[ -n ${EMBED_MODULES:-} ]]; then
	die "EMBED_MODULES: only \"fpm\" (the embedded backend with FPM's modules only)"
fi
MACHINE=$(bench_machine)

# Every run also records, in ns (schedstat), the process tree of each server
# in front of FPM and its FPM pool's: the tree less the pool is the front's
# own CPU (nginx's, or fe-php's worker and supervisor), the figure issue 13's
# fastcgi goal compares. FRONTS holds "server tree-column fpm-column" for
# php_table (bench_medians puts the sampled trees from field 12 on).
FRONTS=""
front_of() { # NAME TREE_PID FPM_PIDFILE
	local fpm
	fpm=$(cat "$3") || die "$1: no FPM pid file $3"
	BENCH_SAMPLE_PIDS+=("$2" "$fpm")
	FRONTS+="$1 $((10 + ${#BENCH_SAMPLE_PIDS[@]})) $((11 + ${#BENCH_SAMPLE_PIDS[@]}))"$'\n'
}
for s in "${SERVERS[@]}"; do
	read -r name port pid <<<"$s"
	case $name in
	nginx+fpm) front_of "$name" "$pid" "$(dirname "$CONF_A")/php-fpm.pid" ;;
	fe-php-fcgi*) front_of "$name" "$pid" "$BENCH_WORK/fpm-$name/php-fpm.pid" ;;
	esac
done

for case in $CASES; do
	want=$(curl -s "http://127.0.0.1:$PORT_A/$case" | wc -c)
	for s in "${SERVERS[@]}"; do
		read -r name port pid <<<"$s"
		bench_check "http://127.0.0.1:$port/$case" "$want"
	done
	for ((run = 1; run <= RUNS; run++)); do
		for s in "${SERVERS[@]}"; do
			read -r name port pid <<<"$s"
			bench_measure "$case" "$name" "http://127.0.0.1:$port/$case" "$pid"
		done
	done
done

# System calls and a CPU profile of each server's whole process tree (FPM's
# children included) per case, after the measured runs.
[[ $PERF == 1 ]] && bench_perf_each $CASES

# php_table: median rows, with ratios against nginx+fpm (req/s, p50, p99,
# server CPU per request).
php_table() {
	bench_medians | awk -F'\t' -v fronts="$FRONTS" '
		BEGIN {
			n = split(fronts, lines, "\n")
			for (j = 1; j <= n; j++) if (split(lines[j], w, " ") == 3) { tcol[w[1]] = w[2]; fcol[w[1]] = w[3] }
		}
		{
			c[NR] = $1; s[NR] = $2; rps[NR] = $3; p99[NR] = $4; cpu[NR] = $5; req[NR] = $9; err[NR] = $10; oc[NR] = $8
			if (!($1 in seen)) { seen[$1] = 1; order[++nc] = $1 }
			idx[$1, $2] = NR
			# The front: the tree less its FPM pool, their ratio in ns
			# applied to the CPU per request of the whole tree.
			front[NR] = -1
			if ($2 in tcol) {
				tree = $(tcol[$2]); pool = $(fcol[$2])
				if (tree > 0) front[NR] = cpu[NR] * (tree - pool) / tree
			}
		}
		END {
			print "| script | server | req/s | p99 | server CPU us/req | front CPU us/req | vs nginx+fpm: req/s | CPU/req | front CPU/req |"
			print "|---|---|---:|---:|---:|---:|---:|---:|---:|"
			for (k = 1; k <= nc; k++) {
				base = idx[order[k], "nginx+fpm"]
				for (i = 1; i <= NR; i++) if (c[i] == order[k]) {
					r1 = base ? sprintf("%.2fx", rps[i] / rps[base]) : "-"
					r2 = base ? sprintf("%.2fx", cpu[i] / cpu[base]) : "-"
					if (s[i] != "nginx+fpm") { r1 = "**" r1 "**" }
					f1 = front[i] >= 0 ? sprintf("%.1f", front[i]) : "-"
					f2 = front[i] >= 0 && base && front[base] > 0 ? sprintf("%.2fx", front[i] / front[base]) : "-"
					printf "| %s | %s | %d | %.2f ms | %.1f | %s | %s | %s | %s |\n", c[i], s[i], rps[i], p99[i] / 1000, cpu[i], f1, r1, r2, f2
				}
			}
			# What a front costing nothing would reach in front of the
			# same FPM: on a machine where the servers share the CPUs,
			# req/s follows CPU per request.
			for (k = 1; k <= nc; k++) {
				base = idx[order[k], "nginx+fpm"]
				if (base && front[base] >= 0 && cpu[base] > front[base])
					printf "%s%s: FPM alone %.1f us a request; a front costing nothing would serve %.2fx nginx+fpm\n", (k == 1 ? "\n" : ""), order[k], cpu[base] - front[base], cpu[base] / (cpu[base] - front[base])
			}
			for (i = 1; i <= NR; i++) { if (oc[i] > 0.15) noisy = 1; if (err[i] > 0) errors = 1 }
			if (noisy) print "\n**Other processes used more than 0.15 cores during some runs: those numbers are distorted.**"
			if (errors) print "\n**Some runs had errors or non-2xx responses.**"
		}'
}

{
	echo "# PHP: fe-php vs nginx + PHP-FPM ($BENCH_DATE)"
	echo
	echo "wrk -t$THREADS -c$CONNS -d${DURATION}s --latency after a ${WARMUP}s warm-up, keep-alive, 127.0.0.1;"
	echo "median of $RUNS run(s) by req/s, servers alternating. $WORKERS PHP workers everywhere, OPcache on"
	echo "(validate_timestamps off). Server CPU = the whole process tree's (nginx and FPM"
	echo "together; fe-php and its FPM together) / requests completed. Front CPU = the"
	echo "tree's less its FPM pool's: nginx's, or fe-php's own (fastcgi rows)."
	[[ -z ${LIBPHP_B:-} ]] || echo "fe-php-embed-B runs $LIBPHP_B, fe-php-embed the default libphp."
	[[ -z ${EMBED_MODULES:-} ]] || echo "fe-php-embed-fpm-modules loads only the modules FPM loads here (PHP_INI_SCAN_DIR); fe-php-embed all of its build's."
	echo
	php_table
	echo
	if [[ $PERF == 1 ]]; then
		bench_syscall_table
		echo
	fi
	echo "Machine:"
	echo
	echo "$MACHINE"
} | tee "$BENCH_RESULTS"
log "results: $BENCH_RESULTS"
