package embed

import (
	"fmt"
	"testing"
	"time"
)

func TestScriptClock(t *testing.T) {
	var c scriptClock
	run := func(script string, d time.Duration) { c.observe(script, c.lookup(script), d) }
	isShort := func(script string) bool { return short(c.lookup(script)) }
	if isShort("/a.php") {
		t.Error("a script not seen yet is short; want it on a PHP thread")
	}
	run("/a.php", 10*time.Microsecond)
	if !isShort("/a.php") {
		t.Error("a script that ran 10 us is not short")
	}
	// One slow run (a cold cache) moves the share, not the verdict.
	run("/a.php", 200*time.Microsecond)
	if !isShort("/a.php") {
		t.Error("one 200 us run among 10 us ones made the script long")
	}
	// A short script on a busy machine: the kernel doubles half of its
	// runs and more (an average of 70 us), the others stay short.
	for i := range 30 {
		d := 30 * time.Microsecond
		if i%5 < 3 {
			d = 100 * time.Microsecond
		}
		run("/noisy.php", d)
	}
	if !isShort("/noisy.php") {
		t.Error("a script with two runs in five of 30 us and three of 100 us is not short")
	}
	// A script that runs 60-400 us is long, whatever its spread.
	for i := range 30 {
		run("/page.php", time.Duration(60+i*12)*time.Microsecond)
	}
	if isShort("/page.php") {
		t.Error("a script of 60-400 us runs is short")
	}
	for range 20 {
		run("/a.php", 2*time.Millisecond)
	}
	if isShort("/a.php") {
		t.Error("a script that now runs 2 ms is still short")
	}
	// A deploy to a new release root brings new paths: past the bound the
	// clock forgets the old ones and learns the new.
	for i := range scriptClockMax + 10 {
		run(fmt.Sprintf("/releases/2/%d.php", i), time.Microsecond)
	}
	if n := c.n.Load(); n > scriptClockMax {
		t.Errorf("%d scripts remembered, over the bound %d", n, scriptClockMax)
	}
	if isShort("/a.php") {
		t.Error("a script of the old release is still remembered past the bound")
	}
	if !isShort(fmt.Sprintf("/releases/2/%d.php", scriptClockMax+9)) {
		t.Error("a script of the new release past the bound is not learnt")
	}
}
