package supervisor

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Find returns the process id of the supervisor serving the configuration
// file at path: the one server.pid_file names when set, otherwise the one
// "fe-php run" process whose -c names that file.
func Find(path, pidFile string) (int, error) {
	if pidFile != "" {
		b, err := os.ReadFile(pidFile)
		if err != nil {
			return 0, fmt.Errorf("server.pid_file: %w (is fe-php running?)", err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			return 0, fmt.Errorf("server.pid_file %s: %q is not a process id", pidFile, b)
		}
		return pid, nil
	}
	want, err := filepath.Abs(path)
	if err != nil {
		return 0, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var found []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if cfg, ok := runConfig(pid); ok && cfg == want {
			found = append(found, pid)
		}
	}
	switch len(found) {
	case 0:
		return 0, fmt.Errorf("no \"fe-php run\" serves %s (set server.pid_file if it runs under another name)", want)
	case 1:
		return found[0], nil
	}
	return 0, fmt.Errorf("several \"fe-php run\" serve %s (pids %v: an upgrade under way?); set server.pid_file", want, found)
}

// runConfig returns the absolute configuration path of pid if it is an
// "fe-php run" process.
func runConfig(pid int) (string, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return "", false
	}
	args := strings.Split(string(bytes.TrimRight(raw, "\x00")), "\x00")
	if len(args) < 2 || filepath.Base(args[0]) != "fe-php" && !strings.HasPrefix(filepath.Base(args[0]), "fe-php") || args[1] != "run" {
		return "", false
	}
	cfg := "fe-php.toml"
	for i := 2; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		switch {
		case a == "c" && i+1 < len(args) && args[i] != a:
			cfg = args[i+1]
			i++
		case strings.HasPrefix(a, "c=") && args[i] != a:
			cfg = a[2:]
		}
	}
	if !filepath.IsAbs(cfg) {
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
		if err != nil {
			return "", false
		}
		cfg = filepath.Join(cwd, cfg)
	}
	return filepath.Clean(cfg), true
}
