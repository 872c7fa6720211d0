// Facts about PHP-FPM as a FastCGI peer that this client is built around
// (PHP 8.2, observed by the tests in this package):
//
//   - FPM does not multiplex: one request per connection at a time, request
//     id 1 always. A kept-open connection (FCGI_KEEP_CONN) ties up one child,
//     so a pool larger than pm.max_children starves: the extra connection is
//     accepted by the kernel and never served while the others stay open.
//   - PHP-FPM parses each FCGI_PARAMS record on its own: a name-value pair
//     must not span records (Do starts a new record at pair boundaries and
//     rejects a pair over 64 KiB with *ParamTooLongError).
//   - pm.max_requests: after a child's last request, FPM sends
//     FCGI_END_REQUEST, half-closes the connection (shutdown SHUT_WR) and then
//     reads and discards until the client closes. The child exits, and is
//     replaced, only once the client closed the connection. A request written
//     to such a connection is swallowed; the reply is EOF, with nothing
//     received. The pool therefore checks idle connections for EOF when they
//     are returned, taken, and by its janitor, and closes them; the FIN can
//     still arrive just after that check, so a caller must retry a failed
//     request on a reused connection when nothing was received (see
//     Conn.Reused and Response.Received).
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
