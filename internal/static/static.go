// Package static is fe-php's static backend: files sent straight from
// disk under a root directory.
//
// What it never serves: a path that escapes the root (through "..",
// encoded dots or slashes, backslashes, NUL bytes, or a symlink pointing
// outside unless Options.AllowSymlinksOutsideRoot; a symlink whose target
// is inside the root, relative or absolute, is followed), a dotfile or
// dot-directory (".env", ".git/"; ".well-known/" excepted, ACME needs it),
// the source of a PHP file (an index_files entry naming one included) or
// a backup copy of one ("config.php.bak", "config.php~": isPHPBackup), a
// file reached through a symlink whose resolved path fails those checks
// (resolvedForbidden), a directory listing. What it adds over a bare file
// read, as nginx and Caddy users expect: Content-Type, ETag and
// Last-Modified with 304s, Range and HEAD (through http.ServeContent, at
// most maxRanges ranges, none overlapping: see ignoreRanges),
// precompressed ".br" and ".gz" siblings, Cache-Control, a 301 to add a
// directory's trailing slash, index files, and an SPA fallback.
package static

import (
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fe-php/fe-php/internal/docroot"
)

// Options configures a Handler.
type Options struct {
	// Root is the directory files are served from: request "/a/b.css" is
	// file Root/a/b.css.
	Root string
	// IndexFiles are tried in order for a directory request.
	IndexFiles []string
	// CacheControl, if set, is sent as the Cache-Control header.
	CacheControl string
	// Precompressed serves "file.br" or "file.gz" instead of "file" when
	// the client accepts that encoding and the sibling exists.
	Precompressed bool
	// AllowSymlinksOutsideRoot lets a symlink under Root point outside it.
	// Symlinks that resolve inside Root are followed either way.
	AllowSymlinksOutsideRoot bool
	// Fallback serves Root's first index file (skipping PHP ones) for a
	// path that names no file: the SPA behaviour of a static default
	// backend.
	Fallback bool
	// Logger receives why a file was not served (at debug level), so
	// that a 404 for a file that exists can be explained.
	Logger *slog.Logger
	// Dir, if set, is Root opened already and shared with the other
	// handlers serving from it (they switch releases together); the
	// Handler does not close it. Nil: New opens Root itself.
	Dir *docroot.Root
}

// Handler serves files under a root directory. Create it with New.
type Handler struct {
	opts  Options
	root  *docroot.Root // files are opened beneath its Dir
	owned bool          // New opened root: Close closes it
	index []string      // opts.IndexFiles without PHP sources and others never sent
	cache *smallCache
	log   *slog.Logger
}

// New opens the root directory and returns a Handler serving it.
func New(opts Options) (*Handler, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &Handler{opts: opts, root: opts.Dir, log: log, cache: newSmallCache()}
	if h.root == nil {
		root, err := docroot.Open(opts.Root, log)
		if err != nil {
			return nil, err
		}
		h.root, h.owned = root, true
	}
	for _, name := range opts.IndexFiles {
		if forbidden("/"+name) == "" {
			h.index = append(h.index, name)
		}
	}
	return h, nil
}

// Close releases the root directory, if New opened it.
func (h *Handler) Close() error {
	if !h.owned {
		return nil
	}
	return h.root.Close()
}

// WithFallback returns a Handler on the same root whose Fallback is on.
func (h *Handler) WithFallback() *Handler {
	c := *h
	c.opts.Fallback = true
	return &c
}

var allowGetHead = []string{"GET, HEAD"}

// ServeHTTP serves the file named by r.URL.Path, which the server has
// already cleaned (see router.CleanPath).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header()["Allow"] = allowGetHead
		http.Error(w, "405 method not allowed", http.StatusMethodNotAllowed)
		return
	}
	upath := r.URL.Path
	if why := forbidden(upath); why != "" {
		h.notServed(w, r, upath, why, http.StatusNotFound)
		return
	}
	rel := strings.TrimPrefix(upath, "/")
	d := h.root.Dir() // one release for the whole request
	if h.serveCached(w, r, d, rel) {
		return
	}
	cacheKey := rel // only a file named by the path itself is cached
	f, err := h.open(d, rel)
	if err == nil && f.isDir() {
		cacheKey = ""
		f.Close()
		if !strings.HasSuffix(upath, "/") {
			redirectToDir(w, r)
			return
		}
		f, rel, err = h.openIndex(d, rel)
		if err != nil {
			h.notServed(w, r, upath, "directory has no index file", http.StatusForbidden)
			return
		}
	}
	if err != nil {
		if h.opts.Fallback && isNotExist(err) && len(h.index) > 0 {
			if f, err = h.open(d, h.index[0]); err == nil {
				defer f.Close()
				h.serveFile(w, r, d, f, h.index[0], "")
				return
			}
		}
		h.notServed(w, r, upath, err.Error(), statusFor(err))
		return
	}
	defer f.Close()
	if !f.isRegular() {
		h.notServed(w, r, upath, "not a regular file", http.StatusNotFound)
		return
	}
	h.serveFile(w, r, d, f, rel, cacheKey)
}

// notServed answers with status and logs the URI-to-file mapping, so
// that "404 for a file that exists" can be explained from the log.
func (h *Handler) notServed(w http.ResponseWriter, r *http.Request, upath, why string, status int) {
	if h.log.Enabled(r.Context(), slog.LevelDebug) {
		h.log.LogAttrs(r.Context(), slog.LevelDebug, "static: not served",
			slog.String("request_id", r.Header.Get("X-Request-Id")),
			slog.String("uri", upath),
			slog.String("file", path.Join(h.opts.Root, upath)),
			slog.String("why", why),
			slog.Int("status", status))
	}
	http.Error(w, strconv.Itoa(status)+" "+strings.ToLower(http.StatusText(status)), status)
}

// open opens rel beneath the root. Unless symlinks may leave the root,
// the kernel enforces that nothing (symlink or "..") resolves outside it.
// A file reached through a symlink is served only if resolvedForbidden
// finds nothing against where it ended up.
func (h *Handler) open(d *docroot.Dir, rel string) (*file, error) {
	if rel == "" {
		rel = "."
	}
	const flags = unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY
	// The common case first, at no extra cost: no symlink on the way, so
	// the file's name is rel, which forbidden has judged already.
	fd, err := openat2(d.FD, rel, flags, unix.RESOLVE_BENEATH|unix.RESOLVE_NO_SYMLINKS)
	var real string
	if err == unix.ELOOP || err == unix.EXDEV || err == unix.ENOSYS {
		// A symlink (or a loop), or no openat2 to tell.
		if fd, err = h.openFollowing(d, rel, flags); err == nil {
			var why string
			if real, why = resolvedForbidden(d, fd); why != "" {
				unix.Close(fd)
				return nil, &os.PathError{Op: "open", Path: rel, Err: refusedError("symlink target: " + why)}
			}
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: rel, Err: err}
	}
	f := &file{fd: fd, name: rel, real: real}
	if err := unix.Fstat(fd, &f.st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: rel, Err: err}
	}
	return f, nil
}

// openFollowing opens rel beneath the root following symlinks: those
// that resolve inside the root, or any with AllowSymlinksOutsideRoot.
func (h *Handler) openFollowing(d *docroot.Dir, rel string, flags int) (int, error) {
	if h.opts.AllowSymlinksOutsideRoot {
		return unix.Openat(d.FD, rel, flags, 0)
	}
	fd, err := openBeneath(d.FD, rel, flags)
	if err == unix.EXDEV {
		// An absolute symlink, or one whose target leaves the root
		// and comes back: allowed if it ends up inside the root.
		fd, err = openResolvedInside(d, rel, flags)
	}
	return fd, err
}

// file is a file opened beneath the root. It stays a raw descriptor
// unless it has to become an *os.File (for http.ServeContent and
// sendfile): os.NewFile costs two system calls more, which the small-file
// path saves.
type file struct {
	fd   int
	st   unix.Stat_t
	name string
	real string // resolved path if reached through a symlink, else ""
	os   *os.File
}

func (f *file) isDir() bool        { return f.st.Mode&unix.S_IFMT == unix.S_IFDIR }
func (f *file) isRegular() bool    { return f.st.Mode&unix.S_IFMT == unix.S_IFREG }
func (f *file) size() int64        { return f.st.Size }
func (f *file) modTime() time.Time { return time.Unix(f.st.Mtim.Unix()) }

// File returns f as an *os.File, which then owns the descriptor.
func (f *file) File() *os.File {
	if f.os == nil {
		f.os = os.NewFile(uintptr(f.fd), f.name)
	}
	return f.os
}

func (f *file) Close() error {
	if f.os != nil {
		return f.os.Close()
	}
	return unix.Close(f.fd)
}

// readFull reads the whole of a small file into buf.
func (f *file) readFull(buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := unix.Read(f.fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.ErrUnexpectedEOF
		}
		n += m
	}
	return n, nil
}

var openat2Missing atomic.Bool // set once if the kernel has no openat2

// openat2 opens rel relative to dirfd with openat2(2) and resolve flags
// (RESOLVE_NO_MAGICLINKS always added), or fails with ENOSYS if the
// kernel has no openat2.
func openat2(dirfd int, rel string, flags int, resolve uint64) (int, error) {
	if openat2Missing.Load() {
		return -1, unix.ENOSYS
	}
	how := &unix.OpenHow{Flags: uint64(flags), Resolve: resolve | unix.RESOLVE_NO_MAGICLINKS}
	fd, err := unix.Openat2(dirfd, rel, how)
	// EAGAIN: a concurrent rename made the kernel unsure the resolution
	// stayed beneath; it asks for a retry.
	for i := 0; err == unix.EAGAIN && i < 8; i++ {
		fd, err = unix.Openat2(dirfd, rel, how)
	}
	if err == unix.ENOSYS {
		openat2Missing.Store(true)
	}
	return fd, err
}

// openBeneath opens rel relative to dirfd, refusing (EXDEV) any
// resolution that leaves dirfd (RESOLVE_BENEATH), absolute symlinks
// included.
func openBeneath(dirfd int, rel string, flags int) (int, error) {
	fd, err := openat2(dirfd, rel, flags, unix.RESOLVE_BENEATH)
	if err == unix.ENOSYS {
		return openBeneathSlow(dirfd, rel, flags)
	}
	return fd, err
}

// openResolvedInside opens rel beneath the root following every symlink,
// and keeps the file only if its resolved path is inside the root. It
// resolves to an O_PATH descriptor first, so that nothing outside the
// root (a device, a FIFO) is ever really opened.
func openResolvedInside(d *docroot.Dir, rel string, flags int) (int, error) {
	if d.Real == "" {
		return -1, unix.EXDEV
	}
	pfd, err := unix.Openat(d.FD, rel, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(pfd)
	if !within(docroot.RealPath(pfd), d.Real) {
		return -1, unix.EXDEV
	}
	// Reopen the very file pfd resolved to, for reading.
	return unix.Open("/proc/self/fd/"+strconv.Itoa(pfd), flags, 0)
}

// within reports whether the resolved path p is dir or beneath it.
func within(p, dir string) bool {
	if p == "" {
		return false
	}
	if dir == "/" {
		return true
	}
	return p == dir || strings.HasPrefix(p, dir+"/")
}

// openBeneathSlow is openBeneath for kernels before 5.6, through os.Root,
// which checks each path component in user space. An escape is reported
// as EXDEV, as openat2 reports it.
func openBeneathSlow(dirfd int, rel string, flags int) (int, error) {
	root, err := os.OpenRoot("/proc/self/fd/" + strconv.Itoa(dirfd))
	if err != nil {
		return -1, err
	}
	defer root.Close()
	f, err := root.OpenFile(rel, flags, 0)
	if err != nil {
		var errno syscall.Errno
		if errors.As(err, &errno) {
			return -1, errno
		}
		// os.Root's "path escapes from parent" carries no errno.
		return -1, unix.EXDEV
	}
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	return fd, err
}

// openIndex opens the first index file that exists in directory rel and
// returns it with its path (so that its name gives the Content-Type). A
// PHP index file is never opened: its source is not for sending.
func (h *Handler) openIndex(d *docroot.Dir, rel string) (*file, string, error) {
	err := error(os.ErrNotExist)
	for _, name := range h.index {
		irel := path.Join(rel, name)
		var f *file
		if f, err = h.open(d, irel); err == nil {
			if f.isRegular() {
				return f, irel, nil
			}
			f.Close()
			err = os.ErrNotExist
		}
	}
	return nil, "", err
}

// redirectToDir answers 301 to the directory's path with a trailing
// slash, the query kept. The path is sent escaped (a directory named
// "a b" or "what?" must not break the Location) and absolute.
func redirectToDir(w http.ResponseWriter, r *http.Request) {
	// The path is clean (see router.CleanPath), so it has no "//" that
	// could turn the Location into another host.
	target := "/" + strings.TrimLeft(r.URL.EscapedPath(), "/") + "/"
	if r.URL.RawQuery != "" {
		target += "?" + r.URL.RawQuery
	}
	http.Redirect(w, r, target, http.StatusMovedPermanently)
}

func isNotExist(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR)
}

func statusFor(err error) int {
	switch {
	case isNotExist(err), errors.Is(err, unix.EXDEV), errors.Is(err, unix.ELOOP), errors.Is(err, unix.ENAMETOOLONG),
		errors.As(err, new(refusedError)):
		return http.StatusNotFound
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return http.StatusForbidden
	default:
		return http.StatusInternalServerError
	}
}

// serveFile sends f, or a precompressed sibling of it; a small identity
// body is cached under cacheKey unless that is "".
func (h *Handler) serveFile(w http.ResponseWriter, r *http.Request, d *docroot.Dir, f *file, rel, cacheKey string) {
	hdr := w.Header()
	ctype := mime.TypeByExtension(path.Ext(rel))
	if ctype != "" {
		hdr["Content-Type"] = []string{ctype}
	}
	if h.opts.CacheControl != "" {
		hdr["Cache-Control"] = []string{h.opts.CacheControl}
	}
	if h.opts.Precompressed && compressible(ctype) {
		hdr["Vary"] = varyAcceptEncoding
		for _, enc := range acceptedEncodings(r.Header.Get("Accept-Encoding")) {
			cf, err := h.open(d, rel+enc.ext)
			if err != nil {
				continue
			}
			defer cf.Close()
			if cf.isRegular() {
				f = cf
				cacheKey = ""
				hdr["Content-Encoding"] = enc.header
				break
			}
		}
	}
	etag := makeETag(f, hdr.Get("Content-Encoding"))
	hdr["Etag"] = []string{etag}
	if isPlainGet(r) && f.size() <= smallFileMax {
		h.serveSmall(w, r, f, cacheKey)
		return
	}
	if ctype == "" {
		// Let ServeContent sniff, but never from a compressed body.
		if hdr.Get("Content-Encoding") != "" {
			hdr["Content-Type"] = []string{"application/octet-stream"}
		}
	}
	if rng := r.Header.Get("Range"); rng != "" && ignoreRanges(rng, f.size()) {
		r = withoutRange(r)
	}
	http.ServeContent(w, r, rel, f.modTime(), f.File())
}

var varyAcceptEncoding = []string{"Accept-Encoding"}

// smallFileMax is the size up to which a plain GET reads the file into
// memory and writes headers and body in one write, which beats sendfile's
// extra system calls for small files.
const smallFileMax = 16 << 10

var smallBufs = sync.Pool{New: func() any { b := make([]byte, smallFileMax); return &b }}

// isPlainGet reports whether r needs neither Range nor conditional
// handling (those go through http.ServeContent).
func isPlainGet(r *http.Request) bool {
	h := r.Header
	return len(h["Range"]) == 0 && len(h["If-None-Match"]) == 0 && len(h["If-Modified-Since"]) == 0 &&
		len(h["If-Match"]) == 0 && len(h["If-Unmodified-Since"]) == 0
}

func (h *Handler) serveSmall(w http.ResponseWriter, r *http.Request, f *file, cacheKey string) {
	hdr := w.Header()
	size := f.size()
	hdr["Last-Modified"] = []string{f.modTime().UTC().Format(http.TimeFormat)}
	hdr["Content-Length"] = []string{strconv.FormatInt(size, 10)}
	hdr["Accept-Ranges"] = acceptRangesBytes
	// A HEAD reads the file too: its answer has GET's Content-Type,
	// sniffed from the bytes when the name says nothing.
	bp := smallBufs.Get().(*[]byte)
	defer smallBufs.Put(bp)
	buf := (*bp)[:size]
	n, err := f.readFull(buf)
	if err != nil {
		// The file shrank under us: send what the headers promise or
		// nothing; net/http closes the connection on a short body.
		w.WriteHeader(http.StatusOK)
		w.Write(buf[:n])
		return
	}
	if _, ok := hdr["Content-Type"]; !ok {
		hdr["Content-Type"] = []string{http.DetectContentType(buf)}
	}
	if cacheKey != "" {
		h.remember(cacheKey, f, buf, hdr)
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return
	}
	w.Write(buf)
}

var acceptRangesBytes = []string{"bytes"}

// makeETag makes a strong validator from the file's mtime and size (as
// nginx does), distinct per content encoding.
func makeETag(f *file, encoding string) string {
	b := make([]byte, 0, 48)
	b = append(b, '"')
	b = strconv.AppendInt(b, f.st.Mtim.Nano(), 16)
	b = append(b, '-')
	b = strconv.AppendInt(b, f.size(), 16)
	if encoding != "" {
		b = append(b, '-')
		b = append(b, encoding...)
	}
	b = append(b, '"')
	return string(b)
}

// compressible reports whether a content type is worth precompressing;
// only those get the extra open of a ".br"/".gz" sibling.
func compressible(ctype string) bool {
	mt, _, _ := strings.Cut(ctype, ";")
	switch {
	case strings.HasPrefix(mt, "text/"):
		return true
	case strings.HasSuffix(mt, "+xml"), strings.HasSuffix(mt, "+json"):
		return true
	}
	switch mt {
	case "application/javascript", "application/json", "application/xml", "application/wasm",
		"image/svg+xml", "application/manifest+json", "font/ttf", "font/otf", "image/x-icon", "image/vnd.microsoft.icon":
		return true
	}
	return false
}

type encoding struct {
	header []string // Content-Encoding value
	ext    string   // sibling file suffix
}

var (
	encBrotli = encoding{[]string{"br"}, ".br"}
	encGzip   = encoding{[]string{"gzip"}, ".gz"}
)

// acceptedEncodings lists the precompressed encodings an Accept-Encoding
// header accepts, in preference order (br, then gzip; q=0 refuses).
func acceptedEncodings(accept string) []encoding {
	if accept == "" {
		return nil
	}
	br, gz := false, false
	for part := range strings.SplitSeq(accept, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if qZero(params) {
			continue
		}
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "br":
			br = true
		case "gzip", "x-gzip":
			gz = true
		}
	}
	switch {
	case br && gz:
		return []encoding{encBrotli, encGzip}
	case br:
		return []encoding{encBrotli}
	case gz:
		return []encoding{encGzip}
	}
	return nil
}

// qZero reports whether Accept-Encoding parameters say q=0.
func qZero(params string) bool {
	for p := range strings.SplitSeq(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
			q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return err == nil && q == 0
		}
	}
	return false
}
