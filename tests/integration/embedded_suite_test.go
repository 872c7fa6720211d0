//go:build fephp_bridge

package integration

import "testing"

// embeddedBackend is the embedded backend (libphp in fe-php's process) for
// the request-level suite: the same cases as PHP-FPM, the same answers.
func embeddedBackend() phpBackend {
	return phpBackend{name: "embedded", getallheaders: true, setup: func(t *testing.T, root string) (string, string) {
		return "worker_pool_size = 4", ""
	}}
}

func TestPHPEmbedded(t *testing.T) {
	t.Parallel()
	runPHPSuite(t, embeddedBackend())
}
