package supervisor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/fe-php/fe-php/internal/server"
)

// What a supervisor hands a process it starts travels in one environment
// variable, as JSON naming the descriptors (exec.Cmd.ExtraFiles, from 3
// on) that carry the rest: the sockets, the configuration, and a pipe
// the process writes "ready" to once it serves.
const (
	envWorker  = "FEPHP_WORKER"  // a worker's Handoff
	envUpgrade = "FEPHP_UPGRADE" // a new binary's Handoff
)

// Handoff is what a worker, or the supervisor of an upgraded binary,
// receives from the supervisor that started it.
type Handoff struct {
	// Listeners are the sockets to serve on.
	Listeners *server.Listeners
	// Config is the configuration file's path, ConfigData its contents
	// as the supervisor validated them (a worker's only).
	Config     string
	ConfigData []byte

	status *os.File
}

// wire is the JSON form of a Handoff.
type wire struct {
	Config   string            `json:"config"`
	ConfigFD int               `json:"config_fd,omitempty"`
	StatusFD int               `json:"status_fd"`
	FDs      map[string]int    `json:"fds"`  // socket descriptors by role
	Keys     map[string]string `json:"keys"` // the addresses they were opened for
}

// handoffFiles lays out what a started process inherits: descriptors to
// pass as 3, 4, ... (see startProcess) and the environment variable
// naming them.
type handoffFiles struct {
	w     wire
	extra []uintptr
}

func newHandoffFiles(config string) *handoffFiles {
	return &handoffFiles{w: wire{Config: config, FDs: map[string]int{}}}
}

// add passes descriptor fd on and returns the number the child sees it as.
func (h *handoffFiles) add(fd int) int {
	h.extra = append(h.extra, uintptr(fd))
	return 2 + len(h.extra)
}

// sockets passes the listeners' descriptors on (the roles in only, all
// when only is empty).
func (h *handoffFiles) sockets(fds map[string]int, keys map[string]string, only ...string) {
	h.w.Keys = map[string]string{}
	for _, role := range slices.Sorted(maps.Keys(fds)) {
		if len(only) > 0 && !slices.Contains(only, role) {
			continue
		}
		h.w.FDs[role] = h.add(fds[role])
		h.w.Keys[role] = keys[role]
	}
}

// startProcess starts the program at path with argv and env, the
// supervisor's stdout and stderr, and the descriptors of h as 3, 4, ...
// It forks with syscall.ForkExec, not os/exec: os/exec asks each file for
// its Fd(), which switches a socket to blocking mode, and the listening
// sockets are shared with every worker (see server.Listeners.Dup).
func startProcess(path string, argv, env []string, h *handoffFiles, sys *syscall.SysProcAttr) (*os.Process, error) {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	files := append([]uintptr{devnull.Fd(), 1, 2}, h.extra...)
	pid, err := syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: env, Files: files, Sys: sys})
	if err != nil {
		return nil, err
	}
	return os.FindProcess(pid)
}

func (h *handoffFiles) env(name string) string {
	b, err := json.Marshal(h.w)
	if err != nil {
		panic(err) // plain data
	}
	return name + "=" + string(b)
}

// configFile is data in an anonymous memory file, for a worker to read:
// a pipe would block the supervisor on a large file, a path could change
// between validation and reading. It returns its descriptor.
func configFile(data []byte) (int, error) {
	fd, err := unix.MemfdCreate("fe-php.toml", unix.MFD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("memfd_create: %w", err)
	}
	for b := data; len(b) > 0; {
		n, err := unix.Write(fd, b)
		if err != nil {
			unix.Close(fd)
			return -1, err
		}
		b = b[n:]
	}
	if _, err := unix.Seek(fd, 0, io.SeekStart); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// pipe returns a pipe's ends, both close-on-exec: the supervisor reads
// r (an os.File), the child inherits the descriptor w.
func pipe() (r *os.File, w int, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, -1, err
	}
	return os.NewFile(uintptr(p[0]), "status pipe"), p[1], nil
}

// IsWorker reports whether this process was started by a supervisor as a
// worker.
func IsWorker() bool { return os.Getenv(envWorker) != "" }

// WorkerHandoff reads what the supervisor handed this worker.
func WorkerHandoff() (*Handoff, error) {
	return readHandoff(envWorker)
}

// upgradeHandoff reads what the old binary's supervisor handed this one
// (nil when it was not started so).
func upgradeHandoff() (*Handoff, error) {
	if os.Getenv(envUpgrade) == "" {
		return nil, nil
	}
	return readHandoff(envUpgrade)
}

func readHandoff(name string) (*Handoff, error) {
	raw := os.Getenv(name)
	os.Unsetenv(name) // not for PHP's getenv(), nor for children
	if raw == "" {
		return nil, fmt.Errorf("%s is not set: this process is started by \"fe-php run\"", name)
	}
	var w wire
	if err := json.Unmarshal([]byte(raw), &w); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	file := func(fd int, what string) (*os.File, error) {
		if fd < 3 {
			return nil, fmt.Errorf("%s: no descriptor for the %s", name, what)
		}
		unix.CloseOnExec(fd) // PHP's proc_open() children must not get it
		return os.NewFile(uintptr(fd), what), nil
	}
	h := &Handoff{Config: w.Config}
	var err error
	if h.status, err = file(w.StatusFD, "status pipe"); err != nil {
		return nil, err
	}
	if w.ConfigFD != 0 {
		f, err := file(w.ConfigFD, "configuration")
		if err != nil {
			return nil, err
		}
		h.ConfigData, err = io.ReadAll(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("reading the configuration handed over: %w", err)
		}
	}
	files := map[string]*os.File{}
	for role, fd := range w.FDs {
		if files[role], err = file(fd, role+" socket"); err != nil {
			return nil, err
		}
	}
	if h.Listeners, err = server.FromFiles(files, w.Keys); err != nil {
		return nil, err
	}
	return h, nil
}

// Ready tells the supervisor this process serves. It is called once.
func (h *Handoff) Ready() {
	if h.status == nil {
		return
	}
	h.status.WriteString("ready\n")
	h.status.Close()
	h.status = nil
}

// waitReady reads a started process's status pipe: nil once it wrote
// "ready", an error if it closed the pipe (exited) first.
func waitReady(r io.Reader) error {
	b := make([]byte, 16)
	var got []byte
	for {
		n, err := r.Read(b)
		got = append(got, b[:n]...)
		if strings.Contains(string(got), "ready\n") {
			return nil
		}
		if err != nil {
			return errors.New("it exited before serving")
		}
	}
}
