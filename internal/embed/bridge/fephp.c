/*
 * fephp.c: fe-php's PHP SAPI, built against the PHP headers into a shared
 * object that fe-php loads after libphp. It starts PHP with web defaults,
 * runs one script per fephp_execute() call on the calling (PHP) thread,
 * and hands headers and output back to Go, buffered: a request that does
 * not stream costs no call from C into Go at all.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <ctype.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/uio.h>
#include <unistd.h>

#include "php.h"
#include "SAPI.h"
#include "php_main.h"
#include "php_variables.h"
#include "php_ini.h"
#include "php_output.h"
#include "ext/standard/info.h"
#include "zend_ini.h"
#include "zend_ini_scanner.h"
#include "zend_exceptions.h"

#include "fephp.h"

ZEND_TSRMLS_CACHE_DEFINE()

static fephp_callbacks cb;

/* The thread's virtual working directory (CWDG) is at this offset in its
 * TSRM block. Only fe-php's build of PHP exports it (scripts/php-patches/
 * 0005): weak, so that the bridge loads against another libphp too, and
 * lets PHP change directory itself there (enter_script_dir). */
#pragma weak cwd_globals_offset

/* Exported by libphp (main/php_ini.c), not declared in its headers. */
extern PHPAPI char *php_ini_opened_path;
extern PHPAPI char *php_ini_scanned_files;

/* Per PHP thread: the request being executed and its buffers. */
typedef struct {
	char *data;
	size_t len, cap;
} buf_t;

static __thread fephp_request *cur;
static __thread buf_t out_buf, hdr_buf;
static __thread int hdr_ready;   /* send_headers ran: status and hdr_buf are final */
static __thread int cur_status;
static __thread size_t body_pos;
static __thread int thread_ready;   /* this thread has its PHP context */
static __thread int thread_dirty;   /* its last request did not end cleanly: recycle it */
static __thread int thread_served;  /* requests since the context was made */
static int max_requests;
/* PHP contexts live on the OS threads that ran PHP. fe-php's own PHP
 * threads keep theirs; Go may run short requests on more of its threads
 * over time than there are slots: such a thread that made a context
 * beyond max_contexts frees it after its request. */
static int max_contexts;
static int contexts;  /* atomic: contexts that exist */

/* Output is delivered to Go once this much is buffered. */
#define OUT_CHUNK (64 * 1024)
/* A thread's buffers grown past this are freed before its next request,
 * so that one large response does not stay in every thread's memory. */
#define BUF_KEEP (256 * 1024)

static void buf_trim(buf_t *b)
{
	if (b->cap > BUF_KEEP) {
		free(b->data);
		b->data = NULL;
		b->cap = 0;
	}
	b->len = 0;
}

/* go_result turns a callback's result into what PHP should do: stop the
 * output when Go says so, and recycle the context after a failure in Go. */
static int go_result(int rc)
{
	if (rc == FEPHP_PANIC) {
		thread_dirty = 1;
	}
	if (rc != FEPHP_OK) {
		php_handle_aborted_connection();
	}
	return rc;
}

static void buf_append(buf_t *b, const char *p, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n) cap *= 2;
		char *d = realloc(b->data, cap);
		if (!d) return; /* out of memory: drop, PHP will fail soon enough */
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
}

/* deliver passes headers (once) and buffered output to Go. */
static int deliver(int flush)
{
	if (!cur || cur->finished) {
		out_buf.len = 0;
		return 0;
	}
	if (!hdr_ready && !SG(headers_sent)) {
		sapi_send_headers();
	}
	int rc = cb.write(cur->handle, cur_status,
	                  cur->delivered ? NULL : hdr_buf.data, cur->delivered ? 0 : hdr_buf.len,
	                  out_buf.data, out_buf.len, flush);
	cur->delivered = 1;
	out_buf.len = 0;
	return rc;
}

static size_t fephp_ub_write(const char *str, size_t len)
{
	if (!cur || cur->finished) {
		return len; /* after fastcgi_finish_request(): discarded, as under FPM */
	}
	buf_append(&out_buf, str, len);
	if (out_buf.len >= OUT_CHUNK && go_result(deliver(0)) != FEPHP_OK) {
		return 0;
	}
	return len;
}

static void fephp_flush(void *server_context)
{
	if (!cur || cur->finished) return;
	go_result(deliver(1));
}

static int fephp_send_headers(sapi_headers_struct *sh)
{
	hdr_buf.len = 0;
	/* The status and the lines go to Go as PHP set them ("Status:"
	 * lines too): Go validates and filters them, for both backends alike. */
	cur_status = sh->http_response_code ? sh->http_response_code : 200;
	zend_llist_position pos;
	for (sapi_header_struct *h = zend_llist_get_first_ex(&sh->headers, &pos); h;
	     h = zend_llist_get_next_ex(&sh->headers, &pos)) {
		buf_append(&hdr_buf, h->header, h->header_len);
		buf_append(&hdr_buf, "\n", 1);
	}
	if (sh->send_default_content_type) {
		sapi_header_struct def;
		sapi_get_default_content_type_header(&def);
		buf_append(&hdr_buf, def.header, def.header_len);
		buf_append(&hdr_buf, "\n", 1);
		sapi_free_header(&def);
	}
	hdr_ready = 1;
	return SAPI_HEADER_SENT_SUCCESSFULLY;
}

static size_t fephp_read_post(char *buffer, size_t count)
{
	if (!cur) return 0;
	if (body_pos < cur->body_len) {
		size_t n = cur->body_len - body_pos;
		if (n > count) n = count;
		memcpy(buffer, cur->body + body_pos, n);
		body_pos += n;
		return n;
	}
	if (cur->body_complete) return 0;
	return cb.read_body(cur->handle, buffer, count);
}

static char *fephp_read_cookies(void)
{
	return cur ? (char *)cur->cookie.p : NULL;
}

/* Variables are registered through the input filter, as FPM does, so
 * that filter_input(INPUT_SERVER, ...) sees them. */
static void fephp_register_variables(zval *track_vars_array)
{
	if (!cur) return;
	for (size_t i = 0; i < cur->env_count; i++) {
		const fephp_str *name = &cur->env[2 * i], *val = &cur->env[2 * i + 1];
		char *v = (char *)val->p;
		size_t new_len = val->len;
		if (sapi_module.input_filter(PARSE_SERVER, name->p, &v, val->len, &new_len)) {
			php_register_variable_safe((char *)name->p, v, new_len, track_vars_array);
		}
	}
}

/* fephp_getenv makes the CGI environment visible to getenv(), as under FPM. */
static char *fephp_getenv(const char *name, size_t name_len)
{
	if (!cur) return NULL;
	for (size_t i = 0; i < cur->env_count; i++) {
		const fephp_str *n = &cur->env[2 * i];
		if (n->len == name_len && memcmp(n->p, name, name_len) == 0) {
			return (char *)cur->env[2 * i + 1].p;
		}
	}
	return NULL;
}

static void fephp_log_message(const char *msg, int syslog_type)
{
	cb.log(cur ? cur->handle : FEPHP_NO_REQUEST, syslog_type, msg, strlen(msg));
}

static zend_result fephp_get_request_time(double *t)
{
	if (!cur) return FAILURE;
	*t = cur->request_time;
	return SUCCESS;
}

static int fephp_activate(void) { return SUCCESS; }
static int fephp_deactivate(void) { return SUCCESS; }

static int fephp_startup_module(sapi_module_struct *m)
{
	return php_module_startup(m, NULL);
}

/* --- per-request settings (php_ini, php_admin_ini) ------------------ */

/* apply_ini_entry sets one directive for this request, as Apache's
 * php_value (PHP_INI_PERDIR) or php_admin_value (PHP_INI_SYSTEM, which
 * also keeps ini_set() off it) do: PHP records the change and restores
 * the value when the request ends. */
static void apply_ini_entry(zval *name, zval *value, zval *unused, int type, void *arg)
{
	int mode = *(int *)arg;
	(void)unused;
	if (type != ZEND_INI_PARSER_ENTRY || !name || !value || Z_TYPE_P(name) != IS_STRING || Z_TYPE_P(value) != IS_STRING) {
		return;
	}
	if (zend_alter_ini_entry_ex(Z_STR_P(name), Z_STR_P(value), mode, ZEND_INI_STAGE_ACTIVATE, 0) != SUCCESS) {
		char msg[512];
		int n = snprintf(msg, sizeof(msg), "%s: PHP refused %s=%s for this request",
		                 mode == ZEND_INI_SYSTEM ? "php_admin_ini" : "php_ini", Z_STRVAL_P(name), Z_STRVAL_P(value));
		cb.log(cur ? cur->handle : FEPHP_NO_REQUEST, 4 /* LOG_WARNING */, msg, n < (int)sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
	}
}

/* apply_ini parses INI text as FPM parses PHP_VALUE, so that constants
 * and expressions (E_ALL & ~E_NOTICE) mean the same on both backends. */
static void apply_ini(fephp_str text, int mode)
{
	if (text.p && text.len) {
		zend_parse_ini_string((char *)text.p /* fe-php's arena: writable */, 1, ZEND_INI_SCANNER_NORMAL, apply_ini_entry, &mode);
	}
}

/* --- interrupts and backtraces, from other threads ----------------- */

/* A PHP thread as other threads see it while it runs a script. One per
 * OS thread, never freed (Go keeps its threads). */
typedef struct fephp_thread {
	pthread_t tid;
	zend_atomic_bool *vm_interrupt;           /* &EG(vm_interrupt) */
	zend_execute_data **current_execute_data; /* &EG(current_execute_data) */
	int interrupt;                            /* atomic: INTERRUPT_ bits */
	int lock;                                 /* atomic: held while another thread uses the pointers above */
} fephp_thread;

/* interrupt bits: asked (by fephp_interrupt), signalled (the one signal
 * was sent), done (PHP raised the error: sticky for the request). */
#define INTERRUPT_ASKED 1
#define INTERRUPT_SIGNALLED 2
#define INTERRUPT_DONE 4

static void thread_lock(fephp_thread *t)
{
	while (__atomic_exchange_n(&t->lock, 1, __ATOMIC_ACQUIRE)) {
		sched_yield();
	}
}

static void thread_unlock(fephp_thread *t) { __atomic_store_n(&t->lock, 0, __ATOMIC_RELEASE); }

static __thread fephp_thread *self;

/* FEPHP_SIGNAL makes a blocking system call of a PHP thread return
 * (EINTR: sleep(), a socket read) so that its VM sees vm_interrupt. Its
 * handler does nothing. SIGRTMIN is PHP's max_execution_time timer. */
#define FEPHP_SIGNAL (SIGRTMIN + 4)

static void interrupt_signal(int sig) { (void)sig; }

static void (*prev_interrupt_function)(zend_execute_data *ex);

/* fephp_interrupt_function runs on the PHP thread at its next VM
 * instruction after vm_interrupt was set, where an error is safe (PHP's
 * own max_execution_time ends a script at the same place). */
static void fephp_interrupt_function(zend_execute_data *ex)
{
	if (self && (__atomic_fetch_and(&self->interrupt, ~INTERRUPT_ASKED, __ATOMIC_ACQ_REL) & INTERRUPT_ASKED)) {
		__atomic_fetch_or(&self->interrupt, INTERRUPT_DONE, __ATOMIC_RELEASE);
		zend_error_noreturn(E_ERROR, "Request terminated: it ran past fe-php's request_terminate_timeout");
	}
	if (prev_interrupt_function) {
		prev_interrupt_function(ex);
	}
}

int fephp_interrupt(fephp_request *req)
{
	fephp_thread *t = __atomic_load_n((fephp_thread **)&req->thread, __ATOMIC_ACQUIRE);
	if (!t) return 0;
	/* The PHP thread unpublishes req->thread under the lock before its
	 * context may be freed: past this check, vm_interrupt is valid. */
	thread_lock(t);
	if (__atomic_load_n((fephp_thread **)&req->thread, __ATOMIC_ACQUIRE) != t) {
		thread_unlock(t);
		return 0;
	}
	int was = __atomic_fetch_or(&t->interrupt, INTERRUPT_ASKED | INTERRUPT_SIGNALLED, __ATOMIC_ACQ_REL);
	zend_atomic_bool_store(t->vm_interrupt, true);
	/* One signal only: it ends a sleep(); PHP's socket waits retry poll()
	 * after EINTR with their whole timeout again, so signalling every
	 * second would keep them waiting for ever. */
	if (!(was & INTERRUPT_SIGNALLED)) {
		pthread_kill(t->tid, FEPHP_SIGNAL);
	}
	thread_unlock(t);
	return 1;
}

/* peek copies n bytes at addr in this process without faulting: the
 * frames of a running PHP thread change under the reader (FPM's slowlog
 * reads a child's memory with ptrace for the same reason). */
static int peek(const void *addr, void *dst, size_t n)
{
	if (!addr) return -1;
	struct iovec local = { dst, n }, remote = { (void *)addr, n };
	return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)n ? 0 : -1;
}

/* peek_str copies the zend_string at zs (at most cap bytes), printable. */
static size_t peek_str(zend_string *zs, char *out, size_t cap)
{
	size_t len;
	if (!zs || peek(&zs->len, &len, sizeof(len)) != 0) return 0;
	if (len > cap) len = cap;
	if (peek(ZSTR_VAL(zs), out, len) != 0) return 0;
	for (size_t i = 0; i < len; i++) {
		if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f) out[i] = '?';
	}
	return len;
}

#define BT_NAME_MAX 256
/* The most one frame's line takes: class, "::", function, "()", " ",
 * file (2 x BT_NAME_MAX), ":" and a line number, "\n", and snprintf's NUL. */
#define BT_FRAME_MAX (BT_NAME_MAX + 2 + BT_NAME_MAX + 2 + 1 + 2 * BT_NAME_MAX + 12 + 1 + 1)

size_t fephp_backtrace(fephp_request *req, char *buf, size_t cap)
{
	fephp_thread *t = __atomic_load_n((fephp_thread **)&req->thread, __ATOMIC_ACQUIRE);
	zend_execute_data *exp = NULL;
	if (!t || cap < BT_FRAME_MAX || peek(t->current_execute_data, &exp, sizeof(exp)) != 0) {
		return 0;
	}
	size_t n = 0;
	for (int depth = 0; exp && depth < 100 && n + BT_FRAME_MAX <= cap; depth++) {
		zend_execute_data ex;
		if (peek(exp, &ex, sizeof(ex)) != 0) break;
		exp = ex.prev_execute_data;
		zend_uchar type;
		zend_string *fname, *file = NULL;
		zend_class_entry *scope;
		if (!ex.func ||
		    peek(&ex.func->common.type, &type, sizeof(type)) != 0 ||
		    peek(&ex.func->common.function_name, &fname, sizeof(fname)) != 0 ||
		    peek(&ex.func->common.scope, &scope, sizeof(scope)) != 0) {
			continue;
		}
		zend_string *cname = NULL;
		if (scope && peek(&scope->name, &cname, sizeof(cname)) == 0 && cname) {
			n += peek_str(cname, buf + n, BT_NAME_MAX);
			buf[n++] = ':';
			buf[n++] = ':';
		}
		size_t l = fname ? peek_str(fname, buf + n, BT_NAME_MAX) : 0;
		if (l) {
			n += l;
			memcpy(buf + n, "()", 2);
			n += 2;
		} else {
			l = (size_t)snprintf(buf + n, 16, "%s", type == ZEND_USER_FUNCTION ? "{main}" : "(internal)");
			n += l;
		}
		uint32_t line = 0;
		if (type == ZEND_USER_FUNCTION && peek(&ex.func->op_array.filename, &file, sizeof(file)) == 0 && file) {
			buf[n++] = ' ';
			n += peek_str(file, buf + n, 2 * BT_NAME_MAX);
			if (ex.opline && peek(&ex.opline->lineno, &line, sizeof(line)) == 0) {
				n += (size_t)snprintf(buf + n, 16, ":%u", line);
			}
		}
		buf[n++] = '\n';
	}
	return n;
}

/* --- functions FPM users expect ------------------------------------- */

/* getallheaders() rebuilds header names from the HTTP_* variables, as
 * FPM does. */
PHP_FUNCTION(fephp_getallheaders)
{
	ZEND_PARSE_PARAMETERS_NONE();
	array_init(return_value);
	if (!cur) return;
	char name[256];
	for (size_t i = 0; i < cur->env_count; i++) {
		const fephp_str *n = &cur->env[2 * i], *v = &cur->env[2 * i + 1];
		const char *src = NULL;
		size_t slen = 0;
		if (n->len > 5 && memcmp(n->p, "HTTP_", 5) == 0) {
			src = n->p + 5;
			slen = n->len - 5;
		} else if ((n->len == 12 && memcmp(n->p, "CONTENT_TYPE", 12) == 0) ||
		           (n->len == 14 && memcmp(n->p, "CONTENT_LENGTH", 14) == 0)) {
			if (v->len == 0) continue;
			src = n->p;
			slen = n->len;
		}
		if (!src || slen >= sizeof(name)) continue;
		int upper = 1;
		for (size_t j = 0; j < slen; j++) {
			char c = src[j];
			if (c == '_') { name[j] = '-'; upper = 1; continue; }
			name[j] = upper ? c : tolower((unsigned char)c);
			upper = 0;
		}
		add_assoc_stringl_ex(return_value, name, slen, (char *)v->p, v->len);
	}
}

/* fastcgi_finish_request() sends the whole response now; the script goes
 * on, and its further output is discarded. */
PHP_FUNCTION(fephp_finish_request)
{
	ZEND_PARSE_PARAMETERS_NONE();
	if (!cur || cur->finished) {
		RETURN_FALSE;
	}
	php_output_end_all();
	if (!SG(headers_sent)) {
		sapi_send_headers();
	}
	int rc = cb.finish(cur->handle, cur_status,
	                   cur->delivered ? NULL : hdr_buf.data, cur->delivered ? 0 : hdr_buf.len,
	                   out_buf.data, out_buf.len);
	out_buf.len = 0;
	cur->delivered = 1;
	cur->finished = 1;
	if (go_result(rc) != FEPHP_OK) {
		RETURN_FALSE;
	}
	RETURN_TRUE;
}

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_fephp_getallheaders, 0, 0, IS_ARRAY, 0)
ZEND_END_ARG_INFO()

ZEND_BEGIN_ARG_WITH_RETURN_TYPE_INFO_EX(arginfo_fephp_finish_request, 0, 0, _IS_BOOL, 0)
ZEND_END_ARG_INFO()

static const zend_function_entry fephp_functions[] = {
	ZEND_NAMED_FE(getallheaders, ZEND_FN(fephp_getallheaders), arginfo_fephp_getallheaders)
	ZEND_NAMED_FE(apache_request_headers, ZEND_FN(fephp_getallheaders), arginfo_fephp_getallheaders)
	ZEND_NAMED_FE(fastcgi_finish_request, ZEND_FN(fephp_finish_request), arginfo_fephp_finish_request)
	ZEND_FE_END
};

/* --- the module ----------------------------------------------------- */

/* OPcache enables itself only under the SAPI names it knows. fe-php
 * starts under one of them, then takes its own name before any script
 * runs, so that php_sapi_name() and PHP_SAPI tell the truth. */
#define STARTUP_NAME "cgi-fcgi"
#define SAPI_NAME "fe-php"

static sapi_module_struct fephp_module = {
	STARTUP_NAME,                 /* name */
	"fe-php",                     /* pretty name */
	fephp_startup_module,         /* startup */
	php_module_shutdown_wrapper,  /* shutdown */
	fephp_activate,               /* activate */
	fephp_deactivate,             /* deactivate */
	fephp_ub_write,               /* unbuffered write */
	fephp_flush,                  /* flush */
	NULL,                         /* get uid */
	fephp_getenv,                 /* getenv */
	php_error,                    /* error handler */
	NULL,                         /* header handler */
	fephp_send_headers,           /* send headers handler */
	NULL,                         /* send header handler */
	fephp_read_post,              /* read POST data */
	fephp_read_cookies,           /* read Cookies */
	fephp_register_variables,     /* register server variables */
	fephp_log_message,            /* log message */
	fephp_get_request_time,       /* request time */
	NULL,                         /* terminate process */
	STANDARD_SAPI_MODULE_PROPERTIES
};

static const char *ini_defaults_text;

/* ini_defaults sets fe-php's web defaults below php.ini's values. */
static void fephp_ini_defaults(HashTable *configuration_hash)
{
	const char *p = ini_defaults_text;
	while (p && *p) {
		const char *eol = strchr(p, '\n');
		size_t line = eol ? (size_t)(eol - p) : strlen(p);
		const char *eq = memchr(p, '=', line);
		if (eq) {
			zval v;
			ZVAL_NEW_STR(&v, zend_string_init(eq + 1, line - (eq - p) - 1, 1));
			zend_hash_str_update(configuration_hash, p, eq - p, &v);
		}
		p += line + (eol ? 1 : 0);
	}
}

/* sapi_name_str is SAPI_NAME as a string marked interned: constants are
 * read by every request, and an interned string is never
 * reference-counted, so threads can share it. */
static zend_string *sapi_name_str;

static void make_sapi_name(void)
{
	sapi_name_str = zend_string_init(SAPI_NAME, sizeof(SAPI_NAME) - 1, 1);
	zend_string_hash_val(sapi_name_str);
	GC_TYPE_INFO(sapi_name_str) = GC_STRING | ((IS_STR_INTERNED | IS_STR_PERSISTENT | IS_STR_PERMANENT) << GC_FLAGS_SHIFT);
	sapi_module.name = (char *)SAPI_NAME;
}

/* set_sapi_constant makes PHP_SAPI agree with php_sapi_name(). Under ZTS
 * each thread has its own copy of the constants table, made when the
 * thread gets its context, so each thread sets its own. */
static void set_sapi_constant(void)
{
	zend_constant *c = zend_hash_str_find_ptr(EG(zend_constants), "PHP_SAPI", sizeof("PHP_SAPI") - 1);
	if (c && Z_TYPE(c->value) == IS_STRING && sapi_name_str) {
		ZVAL_INTERNED_STR(&c->value, sapi_name_str);
	}
}

int fephp_abi(void) { return FEPHP_ABI; }

const char *fephp_php_version(void) { return PHP_VERSION; }

/* The extension API this bridge was built for ("API20220829,TS"): every
 * module of a compatible libphp carries the same string. */
const char *fephp_build_id(void) { return ZEND_MODULE_BUILD_ID; }

int fephp_startup(fephp_config *cfg)
{
	if (cfg->abi != FEPHP_ABI) {
		snprintf(cfg->error, sizeof(cfg->error), "bridge ABI %d, fe-php wants %d", FEPHP_ABI, cfg->abi);
		return -1;
	}
	cb = cfg->cb;
	ini_defaults_text = cfg->ini_defaults;
	max_requests = cfg->max_requests;
	max_contexts = cfg->max_contexts;

	php_tsrm_startup();
	ZEND_TSRMLS_CACHE_UPDATE();
	sapi_startup(&fephp_module);

	/* sapi_startup and module startup copy the struct: set fields between. */
	fephp_module.ini_defaults = fephp_ini_defaults;
	fephp_module.php_ini_ignore_cwd = 1;
	/* With no ini_file, PHP finds the php.ini and scan dir of this
	 * libphp's build (its --with-config-file-path and -scan-dir, or
	 * PHPRC / PHP_INI_SCAN_DIR), as the distribution's PHP does. */
	if (cfg->ini_file && *cfg->ini_file) {
		fephp_module.php_ini_path_override = strdup(cfg->ini_file);
	} else if (cfg->ini_none) {
		fephp_module.php_ini_ignore = 1;
	}
	fephp_module.ini_entries = cfg->ini_entries ? strdup(cfg->ini_entries) : NULL;
	fephp_module.additional_functions = fephp_functions;
	fephp_module.phpinfo_as_text = 0;

	if (fephp_module.startup(&fephp_module) == FAILURE) {
		snprintf(cfg->error, sizeof(cfg->error), "php_module_startup failed (see the log above)");
		return -1;
	}
	make_sapi_name();

	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = interrupt_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_ONSTACK; /* and no SA_RESTART: a blocking call returns */
	sigaction(FEPHP_SIGNAL, &sa, NULL);
	prev_interrupt_function = zend_interrupt_function;
	zend_interrupt_function = fephp_interrupt_function;

	cfg->ini_loaded = php_ini_opened_path;
	cfg->ini_scanned = php_ini_scanned_files;
	return 0;
}

void fephp_shutdown(void)
{
	php_module_shutdown();
	sapi_shutdown();
	tsrm_shutdown();
	free(fephp_module.ini_entries);
	fephp_module.ini_entries = NULL;
}

/* thread_context gives the calling thread its PHP context the first time
 * it runs PHP, and a fresh one after max_requests (leak mitigation) or a
 * request that did not end cleanly. It returns why it recycled one
 * (FEPHP_RECYCLED_*), 0 if it did not. */
static int thread_context(void)
{
	int recycled = 0;
	if (thread_ready && (thread_dirty || (max_requests > 0 && thread_served >= max_requests))) {
		ts_free_thread();
		thread_ready = 0;
		__atomic_sub_fetch(&contexts, 1, __ATOMIC_RELAXED);
		char msg[128];
		int n = thread_dirty
		        ? snprintf(msg, sizeof(msg), "PHP thread context recycled: its last request did not end cleanly")
		        : snprintf(msg, sizeof(msg), "PHP thread context recycled after %d requests (worker_max_requests)", thread_served);
		cb.log(FEPHP_NO_REQUEST, thread_dirty ? 4 /* LOG_WARNING */ : 6 /* LOG_INFO */, msg, (size_t)n);
		recycled = thread_dirty ? FEPHP_RECYCLED_FAILURE : FEPHP_RECYCLED_MAX_REQUESTS;
		thread_dirty = 0;
	}
	if (!thread_ready) {
		__atomic_add_fetch(&contexts, 1, __ATOMIC_RELAXED);
		(void)ts_resource(0);
		ZEND_TSRMLS_CACHE_UPDATE();
		set_sapi_constant();
		thread_ready = 1;
		thread_served = 0;
	}
	thread_served++;
	return recycled;
}

/* FPM runs a script in the script's directory and its shutdown functions
 * back in its own (php_execute_script's chdir, and chdir back). PHP's
 * virtual chdir stat()s the directory each way to check it is one; fe-php
 * has just stat()ed the script, so its directory is one. enter_script_dir
 * makes the script's directory the thread's working directory through PHP's
 * realpath cache without that check (two system calls a request), keeping
 * the one it replaces in *saved for leave_script_dir. It returns 0, and
 * changes nothing, when it cannot (then PHP changes directory itself). */
static int enter_script_dir(const fephp_str *script, cwd_state *saved)
{
	size_t len = script->len;
	char dir[MAXPATHLEN];
	cwd_state state;

	if (&cwd_globals_offset == NULL) {
		return 0; /* a libphp that does not export CWDG's offset */
	}
	while (len > 0 && script->p[len - 1] != '/') {
		len--;
	}
	if (len == 0 || len >= sizeof(dir) || CWDG(cwd).cwd == NULL) {
		return 0;
	}
	if (len > 1) {
		len--; /* "/srv/www/" -> "/srv/www", as virtual_chdir_file; "/" stays */
	}
	memcpy(dir, script->p, len);
	dir[len] = '\0';
	/* A copy to resolve into (virtual_file_ex reallocates state.cwd). */
	state.cwd = estrndup(CWDG(cwd).cwd, CWDG(cwd).cwd_length);
	state.cwd_length = CWDG(cwd).cwd_length;
	if (virtual_file_ex(&state, dir, NULL, CWD_REALPATH) != 0) {
		efree(state.cwd);
		return 0;
	}
	*saved = CWDG(cwd);
	CWDG(cwd) = state;
	return 1;
}

/* leave_script_dir gives the thread back the working directory that
 * enter_script_dir replaced, as FPM's chdir back (a script's own chdir()
 * is undone with it). */
static void leave_script_dir(cwd_state *saved)
{
	efree(CWDG(cwd).cwd);
	CWDG(cwd) = *saved;
}

int fephp_execute(fephp_request *req)
{
	int rc = 0;
	req->recycled = thread_context();
	cur = req;
	buf_trim(&out_buf);
	buf_trim(&hdr_buf);
	hdr_ready = 0;
	cur_status = 200;
	body_pos = 0;
	req->delivered = 0;
	req->finished = 0;

	SG(server_context) = req;
	SG(request_info).request_method = req->method.p;
	SG(request_info).query_string = (char *)req->query.p;
	SG(request_info).request_uri = (char *)req->uri.p;
	SG(request_info).path_translated = (char *)req->script.p;
	SG(request_info).content_type = req->content_type.p;
	SG(request_info).content_length = req->content_length < 0 ? 0 : req->content_length;
	SG(request_info).cookie_data = (char *)req->cookie.p;
	SG(request_info).proto_num = req->proto_num;
	SG(request_info).headers_only = req->method.len == 4 && memcmp(req->method.p, "HEAD", 4) == 0;
	SG(sapi_headers).http_response_code = 200;
	SG(request_info).auth_user = NULL;
	SG(request_info).auth_password = NULL;
	SG(request_info).auth_digest = NULL;
	php_handle_auth_data(req->authorization.p);
	req->interrupted = 0;
	if (!self) {
		self = calloc(1, sizeof(*self)); /* NULL: this thread cannot be interrupted */
	}
	if (self) {
		self->tid = pthread_self();
		self->vm_interrupt = &EG(vm_interrupt);
		self->current_execute_data = &EG(current_execute_data);
		__atomic_store_n(&self->interrupt, 0, __ATOMIC_RELEASE);
	}
	apply_ini(req->ini, ZEND_INI_PERDIR);
	apply_ini(req->admin_ini, ZEND_INI_SYSTEM);

	/* fe-php has the whole body before PHP starts (nginx's request
	 * buffering): PHP waits for no input. With max_input_time at -1 while
	 * the request starts and the script runs, PHP arms its timer once, for
	 * max_execution_time, at the start, instead of for max_input_time and
	 * again for the script a moment later: one timer_settime(2) a request
	 * less. Parsing the body counts against max_execution_time then. The
	 * ini value (ini_get) is untouched; PG is restored before shutdown. */
	zend_long max_input_time = PG(max_input_time);
	PG(max_input_time) = -1;

	if (php_request_startup() == FAILURE) {
		PG(max_input_time) = max_input_time;
		/* PHP may be half set up for this request: start the next one
		 * on a fresh context. */
		thread_dirty = 1;
		SG(server_context) = NULL;
		cur = NULL;
		req->status = 500;
		req->headers = NULL;
		req->headers_len = 0;
		req->out = NULL;
		req->out_len = 0;
		req->contexts = __atomic_load_n(&contexts, __ATOMIC_RELAXED);
		return -1;
	}

	/* From here other threads may interrupt it or read its backtrace
	 * (init_executor has reset vm_interrupt). */
	__atomic_store_n((fephp_thread **)&req->thread, self, __ATOMIC_RELEASE);

	zend_file_handle fh;
	cwd_state saved_cwd;
	volatile int in_dir = 0; /* read after a bailout's longjmp */
	zend_stream_init_filename(&fh, req->script.p);
	fh.primary_script = 1;
	zend_first_try {
		/* Inside the try: its allocations can meet memory_limit, whose
		 * fatal error bails out (as it would in php_execute_script). */
		in_dir = enter_script_dir(&req->script, &saved_cwd);
		if (in_dir) {
			SG(options) |= SAPI_OPTION_NO_CHDIR;
		} else {
			SG(options) &= ~SAPI_OPTION_NO_CHDIR;
		}
		php_execute_script(&fh);
	} zend_end_try();
	zend_destroy_file_handle(&fh);
	if (in_dir) {
		leave_script_dir(&saved_cwd);
	}
	PG(max_input_time) = max_input_time;

	php_request_shutdown(NULL);
	if (self) {
		thread_lock(self); /* no fephp_interrupt is using our pointers after this */
		__atomic_store_n((fephp_thread **)&req->thread, NULL, __ATOMIC_RELEASE);
		thread_unlock(self);
	}
	if (self && (__atomic_load_n(&self->interrupt, __ATOMIC_ACQUIRE) & INTERRUPT_DONE)) {
		/* Stopped mid-script, maybe inside an extension's call: start the
		 * next request on a fresh context. (1: asked too late to stop it,
		 * the script had ended; init_executor clears the VM's flag.) */
		req->interrupted = 1;
		thread_dirty = 1;
	}

	req->status = cur_status;
	req->headers = hdr_buf.data;
	req->headers_len = req->delivered ? 0 : hdr_buf.len;
	req->out = out_buf.data;
	req->out_len = req->finished ? 0 : out_buf.len;
	SG(server_context) = NULL;
	cur = NULL;
	/* Over the bound: this thread gives its context back. (Its output
	 * buffers are not PHP's: req->out stays valid for Go.) */
	if (!req->pinned && max_contexts > 0 && __atomic_load_n(&contexts, __ATOMIC_RELAXED) > max_contexts) {
		ts_free_thread();
		thread_ready = 0;
		thread_dirty = 0; /* gone already: the next context starts clean */
		__atomic_sub_fetch(&contexts, 1, __ATOMIC_RELAXED);
	}
	req->contexts = __atomic_load_n(&contexts, __ATOMIC_RELAXED);
	return rc;
}
