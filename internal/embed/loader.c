/*
 * loader.c: loads libphp and the PHP bridge at run time, and calls the
 * bridge through the function pointers it exports. fe-php itself links
 * only libc and libdl, so one binary serves static and fastcgi on a
 * machine without PHP.
 */
#include <dlfcn.h>
#include <pthread.h>
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

int fephp_call_execute(fephp_request *r) { return p_execute(r); }
int fephp_call_interrupt(fephp_request *r) { return p_interrupt(r); }
size_t fephp_call_backtrace(fephp_request *r, char *buf, size_t cap) { return p_backtrace(r, buf, cap); }
