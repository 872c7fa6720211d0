// Package integration holds fe-php's end-to-end tests: they build the real
// fe-php binary once, start it on a free loopback port with a temporary
// configuration and site, and speak HTTP to it, through net/http where the
// request can be written that way and through raw TCP where net/http or
// net/url would normalize the request target ("..", "%2e%2e", "%2f",
// backslashes, "%00") before the server could see it.
//
// Run them with: go test ./tests/integration/
package integration
