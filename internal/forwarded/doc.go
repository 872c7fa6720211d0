// Package forwarded decides who the client really is when fe-php runs
// behind trusted reverse proxies or load balancers (server.trusted_proxies).
//
// Two layers, each believing only peers in a Trust:
//
//   - Listener (layer 4): the PROXY protocol, v1 and v2. A trusted peer's
//     header sets the connection's RemoteAddr to the client the balancer
//     saw; anyone else's bytes are left alone.
//   - Resolve (layer 7): the Forwarded header (RFC 7239) or the
//     X-Forwarded-For / -Proto / -Host / -Port and X-Real-IP family. From
//     a trusted peer (r.RemoteAddr, so after Listener), they give the
//     client's address, scheme, host and port as an Origin; from anyone
//     else they change nothing.
//
// The address is found as nginx's realip module with real_ip_recursive
// on finds it: walk the forwarded list from the right, skipping trusted
// proxies; the first untrusted address is the client. What a client
// writes itself is always to the left of what the trusted proxies
// append, so it is never reached; garbage stops the walk at the last
// trusted hop. See Resolve for the details and Headers for why a request
// carrying both header kinds is not believed by default.
//
// The trusted proxies must set, or remove, every header of the kind
// Resolve reads (Options.Headers): a header a trusted proxy passes
// through from the client is the client's word.
//
// Using it in a server:
//
//	trust, err := forwarded.ParseTrust(cfg.TrustedProxies)
//	ln = forwarded.Listener(ln, trust, 5*time.Second) // if the PROXY protocol is on; before TLS
//	...
//	o := forwarded.Resolve(r, &forwarded.Options{Trust: trust}, r.TLS != nil, localPort)
//	r.RemoteAddr = o.RemoteAddr() // REMOTE_ADDR, REMOTE_PORT, the access log
//	r.Host = o.Host               // HTTP_HOST, SERVER_NAME, redirects
//	// o.Scheme: HTTPS, REQUEST_SCHEME; o.ServerPort: SERVER_PORT
package forwarded
