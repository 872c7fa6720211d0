/*
 * fephp.h: the seam between fe-php (Go) and its PHP SAPI bridge (C).
 *
 * The bridge is a small shared object built against the PHP headers and
 * loaded at run time after libphp (RTLD_GLOBAL), so that the fe-php
 * binary itself never links libphp. This header uses no PHP type: Go
 * includes it too.
 */
#ifndef FEPHP_H
#define FEPHP_H

#include <stddef.h>
#include <stdint.h>

/* FEPHP_ABI changes whenever a struct or function below changes. */
#define FEPHP_ABI 5

/* A string that crosses the seam: always with its length. The bytes are
 * followed by a NUL too, for the PHP APIs that want C strings; Go has
 * checked that they hold no NUL, CR or LF of their own. */
typedef struct fephp_str {
	const char *p;
	size_t len;
} fephp_str;

/* One request, prepared by Go, executed by the bridge on a PHP thread. */
typedef struct fephp_request {
	uintptr_t handle;          /* Go's handle for callbacks */

	/* CGI environment: env_count pairs, env[2*i] the name, env[2*i+1]
	 * the value. */
	const fephp_str *env;
	size_t env_count;

	fephp_str method;
	fephp_str uri;             /* REQUEST_URI */
	fephp_str query;           /* QUERY_STRING */
	fephp_str script;          /* SCRIPT_FILENAME */
	fephp_str content_type;    /* .p NULL if none */
	fephp_str cookie;          /* .p NULL if none */
	fephp_str authorization;   /* .p NULL if none */
	int64_t content_length;    /* -1 if no body */
	int proto_num;             /* 1000 for HTTP/1.0, 1001 for HTTP/1.1 */
	double request_time;       /* Unix seconds */

	/* PHP settings for this request, as INI text ("name=value" lines,
	 * FPM's PHP_VALUE form): ini at the per-directory level (php_value),
	 * admin_ini at the system level (php_admin_value). .p NULL if none.
	 * PHP restores them when the request ends. */
	fephp_str ini;
	fephp_str admin_ini;

	/* The body, or its first part: when body_complete is 0, the rest is
	 * read through the read_body callback. */
	const char *body;
	size_t body_len;
	int body_complete;

	/* 1: the calling thread is one of fe-php's own PHP threads, which
	 * keeps its context (max_contexts bounds the others). */
	int pinned;

	/* Response, filled in by the bridge. Memory stays valid until the
	 * thread's next request. */
	int status;                /* http_response_code; Go validates it */
	const char *headers;       /* "Name: value\n" lines, as PHP set them */
	size_t headers_len;
	const char *out;           /* output not yet delivered */
	size_t out_len;
	int delivered;             /* headers already went to Go (streaming) */
	int finished;              /* fastcgi_finish_request() completed the response */
	int interrupted;           /* fephp_interrupt stopped the script */
	int recycled;              /* the thread's context was recycled before this request:
	                            * FEPHP_RECYCLED_MAX_REQUESTS or _FAILURE (0: not) */
	int contexts;              /* PHP contexts that exist in the process after it */

	/* The bridge's own: the PHP thread running the request, set (atomically)
	 * while its script runs, for fephp_interrupt and fephp_backtrace. */
	void *thread;
} fephp_request;

/* Why a thread's PHP context was recycled (fephp_request.recycled). */
#define FEPHP_RECYCLED_MAX_REQUESTS 1 /* worker_max_requests reached */
#define FEPHP_RECYCLED_FAILURE 2      /* its last request did not end cleanly */

/* Callback results. */
#define FEPHP_OK 0
#define FEPHP_STOP (-1)   /* the client has gone or the head was refused: stop output */
#define FEPHP_PANIC (-2)  /* Go failed inside the callback: end the request, recycle the context */

/* FEPHP_NO_REQUEST is the handle of a log line that belongs to no
 * request (handles are slot numbers, and 0 is a real one). */
#define FEPHP_NO_REQUEST ((uintptr_t)-1)

/* Calls from the bridge into Go. */
typedef struct fephp_callbacks {
	/* write sends the headers (the first time), then data; flush asks
	 * for it to reach the client now. It returns a FEPHP_ result. */
	int (*write)(uintptr_t h, int status, const char *hdrs, size_t hlen,
	             const char *data, size_t len, int flush);
	/* read_body reads the rest of the request body; 0 at the end. */
	size_t (*read_body)(uintptr_t h, char *buf, size_t len);
	/* log receives PHP's error log lines (level: 3 error .. 7 debug). */
	void (*log)(uintptr_t h, int level, const char *msg, size_t len);
	/* finish completes the response (fastcgi_finish_request()); it
	 * returns a FEPHP_ result. */
	int (*finish)(uintptr_t h, int status, const char *hdrs, size_t hlen,
	               const char *data, size_t len);
} fephp_callbacks;

typedef struct fephp_config {
	int abi;                   /* FEPHP_ABI */
	const char *ini_defaults;  /* "key=value\n": below php.ini */
	const char *ini_file;      /* php.ini to load, or NULL for none */
	const char *ini_entries;   /* "key=value\n": above php.ini */
	int max_requests;          /* recycle a thread's PHP context after this many (0: never) */
	int max_contexts;          /* PHP contexts kept at rest, across threads */
	int ini_none;              /* load no php.ini at all (not even the build's) */
	fephp_callbacks cb;
	char error[512];           /* out: why startup failed */
	const char *ini_loaded;    /* out: the php.ini PHP loaded, NULL if none */
	const char *ini_scanned;   /* out: the scan dir's files PHP loaded, ",\n"-separated, NULL if none */
} fephp_config;

/* The bridge's entry points, looked up with dlsym. */
typedef int (*fephp_startup_fn)(fephp_config *cfg);        /* main thread */
typedef void (*fephp_shutdown_fn)(void);                   /* main thread */
typedef int (*fephp_execute_fn)(fephp_request *req);       /* a PHP thread */
typedef const char *(*fephp_php_version_fn)(void);         /* headers' PHP_VERSION */
typedef const char *(*fephp_build_id_fn)(void);            /* ZEND_MODULE_BUILD_ID */
typedef int (*fephp_abi_fn)(void);
/* fephp_interrupt stops the script req runs, from any thread: a fatal
 * error at its next PHP instruction, and a signal that ends a blocking
 * system call (sleep, a socket read). It returns 0 if req runs no script.
 * The caller must know that req's slot is still executing it. */
typedef int (*fephp_interrupt_fn)(fephp_request *req);
/* fephp_backtrace writes the PHP backtrace of the script req runs, from
 * any thread, one "function() file:line" per line, without stopping it:
 * it reads the PHP thread's frames with process_vm_readv, so a frame that
 * changes meanwhile gives a wrong line, never a crash. It returns the
 * length written (0: no script running, or unreadable). */
typedef size_t (*fephp_backtrace_fn)(fephp_request *req, char *buf, size_t cap);

#endif
