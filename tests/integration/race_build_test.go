package integration

import (
	"debug/buildinfo"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryRaceMode checks that TestMain built the fe-php binary under
// test with the race detector exactly when the tests run with it ("make
// test" does), so that the server is race-checked as well as the tests.
func TestBinaryRaceMode(t *testing.T) {
	info, err := buildinfo.ReadFile(binary)
	if err != nil {
		t.Fatal(err)
	}
	race := false
	for _, s := range info.Settings {
		if s.Key == "-race" {
			race = s.Value == "true"
		}
	}
	if race != raceEnabled {
		t.Errorf("%s was built with -race=%v, but the tests run with the race detector %s", binary, race, onOff(raceEnabled))
	}
	// The build setting is what the go command was told; the race
	// runtime being linked in is what makes it work.
	_, tsan := elfSymbol(t, binary, "__tsan_init", false)
	if tsan != raceEnabled {
		t.Errorf("%s has the race runtime (__tsan_init): %v, want %v", binary, tsan, raceEnabled)
	}
}

// TestRaceReportsReachTheTests runs a race-enabled program that has a data
// race the way the tests run fe-php (childEnv), with a GORACE that would
// send the report elsewhere, and checks that the report is on its stderr
// where raceReports finds it, and that the program exits 66.
func TestRaceReportsReachTheTests(t *testing.T) {
	if !raceEnabled {
		t.Skip("the race detector is off (go test -race turns it on)")
	}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"go.mod": "module racy\n\ngo 1.21\n",
		"main.go": `package main

var n int

func main() {
	done := make(chan bool)
	go func() { n++; done <- true }()
	n++
	<-done
}
`,
	})
	build := exec.Command("go", "build", "-race", "-o", "racy", ".")
	build.Dir = dir
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building a racy program: %v\n%s", err, out)
	}
	cmd := exec.Command(filepath.Join(dir, "racy"))
	cmd.Env = childEnv(append(os.Environ(), "GORACE=log_path="+filepath.Join(dir, "elsewhere")+" exitcode=3"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 66 {
		t.Errorf("the racy program ended with %v, want exit code 66", err)
	}
	if r := raceReports(stderr.String()); !strings.HasPrefix(r, "==================\nWARNING: DATA RACE") {
		t.Errorf("no race report found in its stderr:\n%s", stderr.String())
	}
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
