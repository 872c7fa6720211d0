/*
 * loader.c: loads libphp and the PHP bridge at run time, and calls the
 * bridge through the function pointers it exports. fe-php itself links
 * only libc and libdl, so one binary serves static and fastcgi on a
 * machine without PHP.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>
#include "bridge/fephp.h"
#include "_cgo_export.h"
#include "loader.h"

/*
 * PHP runs on the threads Go creates. Their stack is glibc's default,
 * which is RLIMIT_STACK: 8 MiB normally, but 2 MiB under
 * "ulimit -s unlimited", and PHP 8.2 has no stack-overflow guard. Set an
 * explicit default (FEPHP_THREAD_STACK, loader.h) for every thread this
 * process creates, before the Go runtime starts its threads.
 */

__attribute__((constructor)) static void fephp_thread_stacks(void) {
	pthread_attr_t a;
	if (pthread_attr_init(&a) != 0) return;
	pthread_attr_setstacksize(&a, FEPHP_THREAD_STACK);
	pthread_setattr_default_np(&a);
	pthread_attr_destroy(&a);
}

static void *libphp, *bridge;
static fephp_startup_fn p_startup;
static fephp_execute_fn p_execute;
static fephp_php_version_fn p_php_version;
static fephp_abi_fn p_abi;
static fephp_build_id_fn p_build_id;
static fephp_interrupt_fn p_interrupt;
static fephp_backtrace_fn p_backtrace;

const char *fephp_dlerror(void) {
	const char *e = dlerror();
	return e ? e : "unknown dynamic loader error";
}

int fephp_open_libphp(const char *path) {
	libphp = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
	return libphp ? 0 : -1;
}

/* Every libphp exports PHP's module startup; other libraries do not. */
int fephp_libphp_is_php(void) {
	return dlsym(libphp, "php_module_startup") != NULL && dlsym(libphp, "php_request_startup") != NULL;
}

/* A thread-safe (ZTS) libphp exports the TSRM. */
int fephp_libphp_is_zts(void) {
	return dlsym(libphp, "tsrm_startup") != NULL && dlsym(libphp, "ts_resource_ex") != NULL;
}

const char *fephp_open_bridge(const char *path) {
	bridge = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!bridge) return fephp_dlerror();
	p_startup = (fephp_startup_fn)dlsym(bridge, "fephp_startup");
	p_execute = (fephp_execute_fn)dlsym(bridge, "fephp_execute");
	p_php_version = (fephp_php_version_fn)dlsym(bridge, "fephp_php_version");
	p_abi = (fephp_abi_fn)dlsym(bridge, "fephp_abi");
	p_build_id = (fephp_build_id_fn)dlsym(bridge, "fephp_build_id");
	p_interrupt = (fephp_interrupt_fn)dlsym(bridge, "fephp_interrupt");
	p_backtrace = (fephp_backtrace_fn)dlsym(bridge, "fephp_backtrace");
	if (!p_abi) return "the bridge lacks an entry point";
	if (p_abi() != FEPHP_ABI) return NULL; /* Go reports the ABI mismatch */
	if (!p_startup || !p_execute || !p_php_version || !p_build_id || !p_interrupt || !p_backtrace)
		return "the bridge lacks an entry point";
	return NULL;
}

int fephp_bridge_abi(void) { return p_abi(); }
const char *fephp_bridge_php_version(void) { return p_php_version(); }
const char *fephp_bridge_build_id(void) { return p_build_id(); }

int fephp_call_startup(fephp_config *cfg) {
	cfg->abi = FEPHP_ABI;
	cfg->cb.write = (void *)fephpGoWrite;
	cfg->cb.read_body = (void *)fephpGoReadBody;
	cfg->cb.log = (void *)fephpGoLog;
	cfg->cb.finish = (void *)fephpGoFinish;
	return p_startup(cfg);
}

/* monotonic_ns is CLOCK_MONOTONIC in nanoseconds. */
static int64_t monotonic_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* fephp_call_execute runs r on the calling thread; ns receives how long
 * PHP ran (not counting the wait for Go's scheduler afterwards). */
int fephp_call_execute(fephp_request *r, int64_t *ns)
{
	int64_t start = monotonic_ns();
	r->pinned = 0;
	int rc = p_execute(r);
	*ns = monotonic_ns() - start;
	return rc;
}
int fephp_call_interrupt(fephp_request *r) { return p_interrupt(r); }
size_t fephp_call_backtrace(fephp_request *r, char *buf, size_t cap) { return p_backtrace(r, buf, cap); }

/*
 * PHP threads. Each slot of worker_pool_size is one thread made here, not
 * by Go, that keeps its PHP context for good and runs the requests it is
 * handed one at a time. A script that runs for a while (most do: 0.1 ms
 * and more) then holds no Go P: the Go scheduler neither takes it back
 * from a cgo call nor moves the goroutine between threads afterwards,
 * which cost more than PHP itself on short pages, and the contexts never
 * outnumber the slots. The Go side hands a request over with
 * fephp_thread_run and waits on the slot's eventfd in Go's poller.
 */
typedef struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	fephp_request *req; /* the request to run; NULL: idle */
	int rc;             /* fephp_execute's result for the last one */
	int64_t ns;         /* and how long it ran */
	int done_fd;        /* eventfd, written when a request is done */
} php_thread;

static php_thread *php_threads;

/* A PHP thread runs with no signal blocked, as Go's own threads do: a mask
 * would be inherited by every process a script starts (proc_open, exec,
 * mail), which could then not be stopped with SIGTERM. Go's handler takes
 * what reaches these threads: process signals go to Go's signal loop,
 * and SIGPIPE is made harmless in embed.New (a script's write to a closed
 * socket fails with EPIPE, as in PHP-FPM). */
static void php_thread_signals(void)
{
	sigset_t none;
	sigemptyset(&none);
	pthread_sigmask(SIG_SETMASK, &none, NULL);
}

static void *php_thread_main(void *arg)
{
	php_thread *t = arg;
	php_thread_signals();
	for (;;) {
		pthread_mutex_lock(&t->mu);
		while (!t->req) pthread_cond_wait(&t->cv, &t->mu);
		fephp_request *r = t->req;
		pthread_mutex_unlock(&t->mu);

		int64_t start = monotonic_ns();
		r->pinned = 1;
		int rc = p_execute(r);
		int64_t ns = monotonic_ns() - start;

		pthread_mutex_lock(&t->mu);
		t->req = NULL;
		t->rc = rc;
		t->ns = ns;
		pthread_mutex_unlock(&t->mu);
		uint64_t one = 1;
		while (write(t->done_fd, &one, sizeof(one)) < 0 && errno == EINTR) {
		}
	}
	return NULL;
}

/* fephp_threads_start makes n PHP threads; fds receives their eventfds
 * (non-blocking, for Go's poller). It returns 0, or an errno. */
int fephp_threads_start(int n, int *fds)
{
	php_threads = calloc(n, sizeof(*php_threads));
	if (!php_threads) return ENOMEM;
	for (int i = 0; i < n; i++) {
		php_thread *t = &php_threads[i];
		pthread_mutex_init(&t->mu, NULL);
		pthread_cond_init(&t->cv, NULL);
		t->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (t->done_fd < 0) return errno;
		fds[i] = t->done_fd;
		pthread_t th;
		int e = pthread_create(&th, NULL, php_thread_main, t); /* stack: FEPHP_THREAD_STACK */
		if (e) return e;
		pthread_detach(th);
	}
	return 0;
}

/* fephp_thread_run hands r to PHP thread i, which must be idle. */
void fephp_thread_run(int i, fephp_request *r)
{
	php_thread *t = &php_threads[i];
	pthread_mutex_lock(&t->mu);
	t->req = r;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
}

/* fephp_thread_result is the result of thread i's last request; ns
 * receives how long it ran. */
int fephp_thread_result(int i, int64_t *ns)
{
	php_thread *t = &php_threads[i];
	pthread_mutex_lock(&t->mu);
	int rc = t->rc;
	*ns = t->ns;
	pthread_mutex_unlock(&t->mu);
	return rc;
}
