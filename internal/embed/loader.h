/* loader.h: what Go calls in loader.c. */
#ifndef FEPHP_LOADER_H
#define FEPHP_LOADER_H
#include <stddef.h>
#include <stdint.h>
#include "bridge/fephp.h"

#define FEPHP_THREAD_STACK (64UL << 20)

const char *fephp_dlerror(void);
int fephp_open_libphp(const char *path);
int fephp_libphp_is_php(void);
int fephp_libphp_is_zts(void);
const char *fephp_open_bridge(const char *path);
int fephp_bridge_abi(void);
const char *fephp_bridge_php_version(void);
const char *fephp_bridge_build_id(void);
int fephp_call_startup(fephp_config *cfg);
int fephp_call_execute(fephp_request *r, int64_t *ns);
int fephp_call_interrupt(fephp_request *r);
size_t fephp_call_backtrace(fephp_request *r, char *buf, size_t cap);
int fephp_threads_start(int n, int *fds);
void fephp_thread_run(int i, fephp_request *r);
int fephp_thread_result(int i, int64_t *ns);
#endif
