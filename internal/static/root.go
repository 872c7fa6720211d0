package static

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// rootDir is the open root directory. When the configured root goes
// through a symlink (a "current -> releases/N" deploy), it is resolved
// again at most once a second, and a switched symlink swaps in the new
// directory: files are then served from the new release without a
// restart. The old directory stays open for a minute, so that a request
// that loaded its descriptor just before the swap never uses a reused
// descriptor number.
type rootDir struct {
	path  string
	watch bool // the path goes through a symlink

	fd   atomic.Int64
	real atomic.Pointer[string] // resolved path of fd, "" if unknown
	next atomic.Int64           // UnixNano of the next re-resolution

	mu     sync.Mutex
	file   *os.File
	closed bool
	log    *slog.Logger
}

// openRoot opens path as the root directory.
func openRoot(path string, log *slog.Logger) (*rootDir, error) {
	f, err := openDir(path)
	if err != nil {
		return nil, err
	}
	rd := &rootDir{path: path, file: f, log: log}
	rd.fd.Store(int64(f.Fd()))
	real := realPath(int(f.Fd()))
	rd.real.Store(&real)
	if resolved, err := filepath.EvalSymlinks(path); err == nil && resolved != filepath.Clean(path) {
		rd.watch = true
	}
	return rd, nil
}

func openDir(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !st.IsDir() {
		f.Close()
		return nil, &os.PathError{Op: "open", Path: path, Err: syscall.ENOTDIR}
	}
	return f, nil
}

// FD is the root's descriptor, after a re-resolution when one is due.
func (rd *rootDir) FD() int {
	if rd.watch {
		rd.refresh()
	}
	return int(rd.fd.Load())
}

// Real is the root's resolved path ("" if unknown).
func (rd *rootDir) Real() string { return *rd.real.Load() }

func (rd *rootDir) refresh() {
	now := time.Now().UnixNano()
	next := rd.next.Load()
	if now < next || !rd.next.CompareAndSwap(next, now+int64(time.Second)) {
		return
	}
	resolved, err := filepath.EvalSymlinks(rd.path)
	if err != nil || resolved == rd.Real() {
		return
	}
	f, err := openDir(resolved)
	if err != nil {
		return
	}
	rd.mu.Lock()
	defer rd.mu.Unlock()
	if rd.closed {
		f.Close()
		return
	}
	old := rd.file
	rd.file = f
	real := realPath(int(f.Fd()))
	rd.real.Store(&real)
	rd.fd.Store(int64(f.Fd()))
	time.AfterFunc(time.Minute, func() { old.Close() })
	rd.log.Info("static root changed", slog.String("root", rd.path), slog.String("now", real))
}

func (rd *rootDir) Close() error {
	rd.mu.Lock()
	defer rd.mu.Unlock()
	rd.closed = true
	return rd.file.Close()
}
