// Facts about PHP-FPM as a FastCGI peer that this client is built around
// (PHP 8.2, observed by the tests in this package):
//
//   - FPM does not multiplex: one request per connection at a time. It
//     answers with the request id the client chose in FCGI_BEGIN_REQUEST;
//     Do uses a new id for every request on a connection (1, 2, ... 65535,
//     then 1 again).
//   - A script that writes after fastcgi_finish_request() has its output
//     sent anyway, as FCGI_STDOUT records of its request id after that
//     request's FCGI_END_REQUEST (php-src issue #18275): on a kept
//     connection they arrive while the next request is read. With one
//     request id for all requests, the next user would get them as the
//     start of their response (headers such as Set-Cookie, then body).
//     The response reader discards records of any other id and marks the
//     connection tainted (Conn.Tainted), and the pool never reuses it;
//     bytes that arrive while a connection is idle make the pool's liveness
//     check close it. The next request on that connection also waits until
//     the script ends (php-src issue #10335).
//   - A kept-open connection (FCGI_KEEP_CONN) ties up one child until the
//     client closes it, even while idle. A connection dialed while every
//     child is attached to another one waits in FPM's accept backlog, and
//     is never served while those stay open: a pool larger than
//     pm.max_children, or other clients holding children, starve it until
//     a read timeout. The pool closes idle connections after
//     PoolConfig.KeepAlive (0: no keep-alive), and closes a returned
//     connection instead of keeping it while one of its new connections has
//     waited more than 50ms for its first response record (see Pool).
//   - PHP-FPM parses each FCGI_PARAMS record on its own: a name-value pair
//     must not span records (Do starts a new record at pair boundaries and
//     rejects a pair over 64 KiB with *ParamTooLongError).
//   - pm.max_requests: after a child's last request, FPM sends
//     FCGI_END_REQUEST, half-closes the connection (shutdown SHUT_WR) and then
//     reads and discards until the client closes. The child exits, and is
//     replaced, only once the client closed the connection. A request written
//     to such a connection is swallowed; the reply is EOF, with nothing
//     received. The pool therefore checks idle connections for EOF when they
//     are returned, taken, and by its janitor, and closes them.
//   - Retrying a failed request is safe only when it provably never reached
//     PHP: when the connection failed before any byte of the request was
//     written (the error matches ErrNotSent). That happens when FPM closed
//     the connection while it was idle (FPM restarted or killed; over a Unix
//     socket the write then fails with EPIPE at once). "Nothing of the
//     response received" proves nothing: a child that dies after it read the
//     request (segfault, OOM killer, request_terminate_timeout, a script that
//     kills its own process) closes the connection without a record, after
//     the script may have done its work, so a POST retried on that ground can
//     run on every child in turn. A FIN that crosses the request on a
//     connection FPM half-closed for pm.max_requests looks the same and is
//     not retried either; the liveness checks make that race rare.
//   - FCGI_STDERR carries PHP's log channel when the error_log ini setting is
//     unset (fastcgi.logging = 1, the default): error_log() messages and PHP
//     errors with log_errors = On. FPM collects them and sends them ahead of
//     the next stdout flush (or the end), each prefixed "PHP message: " and
//     joined with "; ", so one record may hold several messages and a later
//     record starts with "; ". Writes to php://stderr go to the worker's fd 2,
//     which is FPM's own log (catch_workers_output), never to the client; FPM
//     has no STDERR constant. With error_log set, messages go to that file.
//     A missing script gives "Primary script unknown" on FCGI_STDERR and a
//     "Status: 404 Not Found" response from FPM itself.
//   - FCGI_END_REQUEST's app status is 0 even after exit(3).
//   - FPM pads records to a multiple of 8 bytes.
package fastcgi
