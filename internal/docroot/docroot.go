// Package docroot keeps a directory open that may be reached through
// symlinks, as atomic deploys lay a site out ("current -> releases/N"):
// the path is resolved again at most once a second, and a switched
// symlink swaps in the new release's directory, without a restart.
//
// Everything of one server that serves from the same path (the PHP
// resolver, the static handler beside the scripts, a static backend on
// the same root) shares one Root, so that all of them switch releases at
// the same instant: a page rendered from the new release never asks for
// an asset the static side still looks up in the old one.
package docroot

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// A Dir is one resolution of a Root: an open directory and where it is.
type Dir struct {
	// FD is the directory's descriptor, for openat-style calls. It stays
	// open at least a minute after a newer Dir replaced this one.
	FD int
	// Path is the directory's resolved absolute path (no symlinks),
	// what DOCUMENT_ROOT names. Real is the kernel's name for FD (from
	// /proc/self/fd; "" if unknown), which checks of where a file
	// resolved to compare against.
	Path, Real string

	file *os.File
}

// Root is a directory path followed through its symlinks. It is safe for
// concurrent use.
type Root struct {
	path  string // as configured, absolute and clean
	watch bool   // the path goes through a symlink
	log   *slog.Logger

	cur  atomic.Pointer[Dir]
	next atomic.Int64 // UnixNano of the next re-resolution

	mu     sync.Mutex
	closed bool
	old    []*os.File // replaced directories, closed a minute later or at Close
}

// Open opens path (made absolute) as a Root. It fails when path does not
// exist or is not a directory. log receives a line at each switch (nil:
// none).
func Open(path string, log *slog.Logger) (*Root, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("directory %q: %w", path, err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("directory %q: %w", abs, err)
	}
	d, err := openDir(resolved)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Root{path: abs, watch: resolved != abs, log: log}
	r.cur.Store(d)
	return r, nil
}

func openDir(path string) (*Dir, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || !st.IsDir() {
		f.Close()
		return nil, &os.PathError{Op: "open", Path: path, Err: syscall.ENOTDIR}
	}
	return &Dir{FD: int(f.Fd()), Path: path, Real: RealPath(int(f.Fd())), file: f}, nil
}

// RealPath is the path the kernel resolved fd to, from /proc/self/fd
// ("" if unknown).
func RealPath(fd int) string {
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil || !strings.HasPrefix(p, "/") {
		return ""
	}
	return p
}

// Path is the path as configured (absolute, clean, symlinks kept).
func (r *Root) Path() string { return r.path }

// Dir is the directory the path leads to now, after a re-resolution when
// one is due. A request should take it once and use it throughout.
func (r *Root) Dir() *Dir {
	if r.watch {
		r.refresh()
	}
	return r.cur.Load()
}

func (r *Root) refresh() {
	now := time.Now().UnixNano()
	next := r.next.Load()
	if now < next || !r.next.CompareAndSwap(next, now+int64(time.Second)) {
		return
	}
	seen := r.cur.Load()
	resolved, err := filepath.EvalSymlinks(r.path)
	if err != nil || resolved == seen.Path {
		return
	}
	d, err := openDir(resolved)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// A resolution slower than a second may finish after a later one:
	// the older answer must not replace the newer.
	if r.closed || !r.cur.CompareAndSwap(seen, d) {
		d.file.Close()
		return
	}
	// A request that took the old Dir just before the swap may still use
	// its descriptor: close it only when no request can, so that the
	// number is never reused under one.
	r.old = append(r.old, seen.file)
	time.AfterFunc(time.Minute, func() { r.closeOld(seen.file) })
	r.log.Info("document root changed", slog.String("root", r.path), slog.String("now", resolved))
}

func (r *Root) closeOld(f *os.File) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, o := range r.old {
		if o == f {
			r.old = append(r.old[:i], r.old[i+1:]...)
			f.Close()
			return
		}
	}
}

// Close closes the directory and any it replaced.
func (r *Root) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	for _, f := range r.old {
		f.Close()
	}
	r.old = nil
	return r.cur.Load().file.Close()
}
