/* phploop: PHP requests in a C loop, through a libphp's embed SAPI and
 * nothing else: no server, no sockets, no Go. It is the floor under
 * fe-php's embedded backend (what one request of a script costs PHP
 * itself: request start-up, execution, shutdown), and a way to compare two
 * builds of PHP (flags, patches) on a noisy machine, since it runs on one
 * thread and reports the fastest batch.
 *
 *   [PHPLOOP_INI="name=value..."] phploop SCRIPT REQUESTS [BATCHES]
 *
 * The PHP is the one it was linked against (bench/phploop.sh builds it per
 * prefix, and against Debian's NTS libphp8.2-embed), with that build's
 * php.ini and conf.d, and OPcache on (validate_timestamps off) as in
 * bench/php.sh. Output is discarded and
 * counted. It prints one line:
 *
 *   min_us=X median_us=Y cpu_min_us=Z bytes=B
 *
 * per request: the fastest and the median batch by wall-clock time, and the
 * fastest batch by the thread's CPU time; B is the output of one request.
 * The first batch is a warm-up and not counted. */

#include <sapi/embed/php_embed.h>
#include <main/php_main.h>
#include <main/SAPI.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* OPcache's settings; PHPLOOP_INI adds lines (fe-php's ZTS build needs
 * "zend_extension=opcache.so": its conf.d leaves OPcache to fe-php, while
 * Debian's embed conf.d loads it). */
static const char ini[] =
	"opcache.enable=1\n"
	"opcache.enable_cli=1\n"
	"opcache.validate_timestamps=0\n"
	"opcache.memory_consumption=128\n"
	"html_errors=0\n"
	"display_errors=stderr\n";

static size_t out_bytes;

static size_t discard(const char *s, size_t len)
{
	(void) s;
	out_bytes += len;
	return len;
}

static double now(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int run(const char *script)
{
	zend_file_handle fh;
	int ok;

	if (php_request_startup() == FAILURE) {
		return -1;
	}
	SG(headers_sent) = 1;
	SG(request_info).no_headers = 1;
	zend_stream_init_filename(&fh, script);
	ok = php_execute_script(&fh);
	zend_destroy_file_handle(&fh);
	php_request_shutdown(NULL);
	return ok ? 0 : -1;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *) a, y = *(const double *) b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s SCRIPT REQUESTS [BATCHES]\n", argv[0]);
		return 2;
	}
	const char *script = argv[1];
	long total = atol(argv[2]);
	int batches = argc > 3 ? atoi(argv[3]) : 20;
	if (total <= 0 || batches <= 0 || total < batches) {
		fprintf(stderr, "phploop: REQUESTS must be at least BATCHES (> 0)\n");
		return 2;
	}
	long per = total / batches;

#ifdef ZTS
	php_tsrm_startup();
#endif
	zend_signal_startup();
	/* OPcache enables itself only under SAPI names it knows (fe-php's
	 * bridge starts under this one too). */
	php_embed_module.name = "cgi-fcgi";
	sapi_startup(&php_embed_module);
	const char *extra = getenv("PHPLOOP_INI");
	size_t n = strlen(ini) + (extra ? strlen(extra) : 0) + 2;
	php_embed_module.ini_entries = malloc(n);
	snprintf(php_embed_module.ini_entries, n, "%s%s\n", ini, extra ? extra : "");
	php_embed_module.ub_write = discard;
	php_embed_module.executable_location = argv[0];
	if (php_embed_module.startup(&php_embed_module) == FAILURE) {
		fprintf(stderr, "phploop: PHP's module start-up failed\n");
		return 1;
	}
	SG(options) |= SAPI_OPTION_NO_CHDIR;

	double *wall = calloc(batches, sizeof(double));
	double *cpu = calloc(batches, sizeof(double));
	size_t bytes = 0;
	for (int b = -1; b < batches; b++) {
		double w0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_THREAD_CPUTIME_ID);
		out_bytes = 0;
		for (long i = 0; i < per; i++) {
			if (run(script) != 0) {
				fprintf(stderr, "phploop: %s failed\n", script);
				return 1;
			}
		}
		if (b >= 0) {
			wall[b] = (now(CLOCK_MONOTONIC) - w0) / per;
			cpu[b] = (now(CLOCK_THREAD_CPUTIME_ID) - c0) / per;
		}
		bytes = out_bytes / per;
	}
	php_module_shutdown();
	sapi_shutdown();
#ifdef ZTS
	tsrm_shutdown();
#endif

	qsort(wall, batches, sizeof(double), cmp);
	qsort(cpu, batches, sizeof(double), cmp);
	printf("min_us=%.2f median_us=%.2f cpu_min_us=%.2f bytes=%zu\n",
		wall[0], wall[batches / 2], cpu[0], bytes);
	return 0;
}
