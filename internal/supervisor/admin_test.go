package supervisor

import (
	"net/http/httptest"
	"testing"
	"time"
)

// TestPProfDuration: the time a profile request takes in the worker, which
// the supervisor's write deadline and wait are extended by.
func TestPProfDuration(t *testing.T) {
	for _, tc := range []struct {
		target string
		want   time.Duration
		bad    bool
	}{
		{"/debug/pprof/profile", 30 * time.Second, false}, // net/http/pprof's default
		{"/debug/pprof/profile?seconds=5", 5 * time.Second, false},
		{"/debug/pprof/trace", time.Second, false},
		{"/debug/pprof/trace?seconds=0.5", 500 * time.Millisecond, false},
		{"/debug/pprof/heap", 0, false},
		{"/debug/pprof/heap?seconds=10", 10 * time.Second, false}, // a delta profile
		{"/debug/pprof/goroutine?debug=1", 0, false},
		{"/debug/pprof/profile?seconds=601", 0, true},
		{"/debug/pprof/profile?seconds=-1", 0, true},
		{"/debug/pprof/trace?seconds=x", 0, true},
	} {
		got, err := pprofDuration(httptest.NewRequest("GET", tc.target, nil))
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("%s: %v, %v; want %v (error: %v)", tc.target, got, err, tc.want, tc.bad)
		}
	}
}
