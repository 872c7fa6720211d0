//go:build fephp_bridge

package integration

import (
	"strings"
	"testing"
)

// imagickThreadScript reports ImageMagick's thread limit at the request's
// start, then sets it to $_GET['set'] when given and reports it again.
const imagickThreadScript = `<?php
$t = Imagick::RESOURCETYPE_THREAD;
echo (int) Imagick::getResourceLimit($t);
if (isset($_GET['set'])) {
    Imagick::setResourceLimit($t, (int) $_GET['set']);
    echo ' ', (int) Imagick::getResourceLimit($t);
}
`

// With imagick.set_single_thread (its default), every request starts with
// ImageMagick's thread limit at 1, as under FPM, even after a script of an
// earlier request changed it. The embedded build sets the limit back only
// after such a change (scripts/php-patches/imagick/0001), not at every
// request start: a request after a change must still find 1, on the PHP
// thread that made the change and on another.
func TestEmbeddedImagickThreadLimitPerRequest(t *testing.T) {
	t.Parallel()
	for _, threads := range []string{"1", "2"} {
		t.Run("threads="+threads, func(t *testing.T) {
			t.Parallel()
			s := embStart(t, embOpts{
				php:   "worker_pool_size = " + threads,
				files: map[string]string{"root/limit.php": imagickThreadScript},
			})
			// ImageMagick caps the limit at OpenMP's threads (the CPUs).
			resp, body := get(t, s.Server, "/limit.php?set=2")
			wantStatus(t, resp, body, 200)
			switch got := strings.TrimSpace(string(body)); got {
			case "1 2":
			case "1 1":
				t.Skip("ImageMagick allows one thread on this machine: a change cannot be seen")
			default:
				t.Fatalf("/limit.php?set=2: the thread limit was %q, want \"1 2\"", got)
			}
			for i, step := range []struct{ query, want string }{
				{"", "1"}, // set back at this request's start
				{"", "1"},
				{"?set=2", "1 2"},
				{"?set=2", "1 2"},
				{"", "1"},
			} {
				resp, body := get(t, s.Server, "/limit.php"+step.query)
				wantStatus(t, resp, body, 200)
				if got := strings.TrimSpace(string(body)); got != step.want {
					t.Fatalf("request %d (/limit.php%s): the thread limit was %q, want %q", i, step.query, got, step.want)
				}
			}
		})
	}
}
