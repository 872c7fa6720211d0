package docroot

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// A root reached through a symlink follows a switch of the link within
// about a second, and the Dir a request took before the switch stays
// usable.
func TestRootFollowsSwitch(t *testing.T) {
	base := t.TempDir()
	for _, rel := range []string{"r1", "r2"} {
		os.MkdirAll(filepath.Join(base, rel), 0o755)
		os.WriteFile(filepath.Join(base, rel, "v.txt"), []byte(rel), 0o644)
	}
	current := filepath.Join(base, "current")
	if err := os.Symlink("r1", current); err != nil {
		t.Fatal(err)
	}
	r, err := Open(current, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	before := r.Dir()
	if before.Path != filepath.Join(base, "r1") || before.Real != before.Path {
		t.Fatalf("before the switch: Path %q, Real %q; want %q", before.Path, before.Real, filepath.Join(base, "r1"))
	}
	if err := os.Symlink("r2", current+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(current+".new", current); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for r.Dir().Path != filepath.Join(base, "r2") {
		if time.Now().After(deadline) {
			t.Fatalf("3 s after the switch the root is still %q", r.Dir().Path)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The old Dir's descriptor still names release 1.
	var st unix.Stat_t
	if err := unix.Fstatat(before.FD, "v.txt", &st, 0); err != nil {
		t.Errorf("the Dir taken before the switch: %v", err)
	}
	if got := RealPath(r.Dir().FD); got != filepath.Join(base, "r2") {
		t.Errorf("the new Dir's descriptor resolves to %q", got)
	}
}

// Without a symlink on the way the root is never resolved again: every
// request gets the same Dir.
func TestRootWithoutSymlink(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.watch || r.Dir() != r.Dir() || r.Path() != dir {
		t.Errorf("a plain directory: watch %v, Path %q", r.watch, r.Path())
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Errorf("a second Close: %v", err)
	}
}

// Open refuses what is not a directory, naming it.
func TestOpenNotADirectory(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o644)
	for _, p := range []string{file, filepath.Join(dir, "missing")} {
		if r, err := Open(p, nil); err == nil {
			r.Close()
			t.Errorf("Open(%q): no error", p)
		}
	}
}
