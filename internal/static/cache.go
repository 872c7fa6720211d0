package static

import (
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fe-php/fe-php/internal/docroot"
)

// smallCache keeps the bytes and response headers of small files sent
// whole, so that sending one again costs a single fstatat, which proves it
// is still the same unchanged file (device, inode, size, mtime, ctime),
// instead of openat2, fstat, read and close. Nothing stale is served (with
// the two rules below): a changed or replaced file fails the check and
// takes the full path
// (whose openat2 also re-checks that the path stays inside the root).
// A file that was reached through a symlink is proved, instead, by an
// O_PATH open, fstat and readlink of /proc/self/fd: the same unchanged
// file at the same resolved path, which resolvedForbidden has passed (a
// renamed directory on the way changes no file, only that path).
//
// The check can only prove what the timestamps tell apart. The kernel
// stamps a change with a coarse clock (a jiffy; a second or two on some
// file systems), so a file rewritten in place at its old size within one
// tick of the copy being read would pass it. A file is therefore cached
// only once its ctime is settleTime old: any later change stamps a newer
// ctime. Freshly written files take the full path until then. And only
// files on a local file system are cached (localFSType): on NFS, SMB or
// FUSE a stat may answer from the client's attribute cache while an open
// asks the server, so a copy could outlive a change made on another host.
type smallCache struct {
	mu    sync.RWMutex
	m     map[string]*cachedFile
	bytes int

	hits, misses atomic.Uint64

	// now is the clock that tells a settled file; tests move it on.
	now func() time.Time

	// remote holds the devices (st_dev) found not to be local file
	// systems, so that their files, never cached, do not pay an fstatfs
	// (on NFS a round trip to the server) at every request. Only the
	// "not local" answer is kept: a device number reused later can cost
	// a cached copy, never serve a stale one.
	remote sync.Map
}

// settleTime is how old a file's last change (ctime) must be before the
// cache keeps it: longer than the coarsest timestamp tick in use (FAT's
// two seconds).
const settleTime = 3 * time.Second

// settled reports whether a file last changed at ctime is old enough to
// cache.
func (c *smallCache) settled(ctime unix.Timespec) bool {
	return c.now().Sub(time.Unix(ctime.Unix())) >= settleTime
}

// CacheStats reports how many plain GET and HEAD requests for a file the
// small-file cache answered (hits) and could not answer (misses: not
// cached, or changed since), for metrics.
func (h *Handler) CacheStats() (hits, misses uint64) {
	return h.cache.hits.Load(), h.cache.misses.Load()
}

// cacheMaxBytes bounds the cache's memory, the file bytes and
// entryOverhead an entry; past it the cache starts over (simple, and a
// site's hot small files refill it at once).
const cacheMaxBytes = 16 << 20

// entryOverhead is what an entry costs besides its bytes and name (the
// struct, its headers, the map slot): empty files and many names for one
// file (a case-insensitive mount) count too.
const entryOverhead = 512

func (e *cachedFile) cost(rel string) int { return len(e.body) + len(rel) + entryOverhead }

type cachedFile struct {
	real         string // resolved path, if reached through a symlink
	dev, ino     uint64
	size         int64
	mtime, ctime unix.Timespec
	body         []byte
	// vary: the file's type (by its name) is one a precompressed
	// sibling may stand in for, so the answer varies by Accept-Encoding.
	vary         bool
	ctype, etag  []string
	lastModified []string
	length       []string
}

func newSmallCache() *smallCache {
	return &smallCache{m: map[string]*cachedFile{}, now: time.Now}
}

func (c *smallCache) get(rel string) *cachedFile {
	c.mu.RLock()
	e := c.m[rel]
	c.mu.RUnlock()
	return e
}

func (c *smallCache) put(rel string, e *cachedFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[rel]; old != nil {
		c.bytes -= old.cost(rel)
	}
	if c.bytes+e.cost(rel) > cacheMaxBytes {
		clear(c.m)
		c.bytes = 0
	}
	c.m[rel] = e
	c.bytes += e.cost(rel)
}

// same reports whether st describes the file e was read from, unchanged.
func (e *cachedFile) same(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFREG && st.Dev == e.dev && st.Ino == e.ino &&
		st.Size == e.size && st.Mtim == e.mtime && st.Ctim == e.ctime
}

// serveCached sends rel from the cache when it can; false means the
// caller takes the full path.
func (h *Handler) serveCached(w http.ResponseWriter, r *http.Request, d *docroot.Dir, rel string) bool {
	if rel == "" || strings.HasSuffix(rel, "/") || !isPlainGet(r) {
		return false
	}
	e := h.cache.get(rel)
	if e == nil {
		h.cache.misses.Add(1)
		return false
	}
	if e.vary && len(acceptedEncodings(r.Header.Get("Accept-Encoding"))) > 0 {
		return false // a precompressed sibling may be the answer
	}
	if !stillSame(d, rel, e) {
		h.cache.misses.Add(1)
		return false
	}
	h.cache.hits.Add(1)
	hdr := w.Header()
	hdr["Content-Type"] = e.ctype
	if h.opts.CacheControl != "" {
		hdr["Cache-Control"] = []string{h.opts.CacheControl}
	}
	if e.vary {
		hdr["Vary"] = varyAcceptEncoding
	}
	hdr["Etag"] = e.etag
	hdr["Last-Modified"] = e.lastModified
	hdr["Content-Length"] = e.length
	hdr["Accept-Ranges"] = acceptRangesBytes
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return true
	}
	w.Write(e.body)
	return true
}

// stillSame reports whether rel still names the unchanged file e was
// read from, at the same resolved path if it was reached through a
// symlink.
func stillSame(d *docroot.Dir, rel string, e *cachedFile) bool {
	var st unix.Stat_t
	if e.real == "" {
		return unix.Fstatat(d.FD, rel, &st, 0) == nil && e.same(&st)
	}
	fd, err := unix.Openat(d.FD, rel, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.Fstat(fd, &st) == nil && e.same(&st) && docroot.RealPath(fd) == e.real
}

// remember caches a small file just read whole, with the headers sent,
// if it has settled and lives on a local file system.
func (h *Handler) remember(rel string, f *file, body []byte, hdr http.Header) {
	if !h.cache.settled(f.st.Ctim) {
		return
	}
	if _, ok := h.cache.remote.Load(f.st.Dev); ok {
		return
	}
	var fs unix.Statfs_t
	if unix.Fstatfs(f.fd, &fs) != nil {
		return
	}
	if !localFSType(int64(fs.Type)) {
		h.cache.remote.Store(f.st.Dev, struct{}{})
		return
	}
	h.cache.put(rel, &cachedFile{
		dev: f.st.Dev, ino: f.st.Ino, size: f.st.Size, mtime: f.st.Mtim, ctime: f.st.Ctim,
		real:         f.real,
		body:         append([]byte(nil), body...),
		vary:         hdr["Vary"] != nil,
		ctype:        hdr["Content-Type"],
		etag:         hdr["Etag"],
		lastModified: hdr["Last-Modified"],
		length:       hdr["Content-Length"],
	})
}

// localFSType reports whether a file system type (statfs's f_type) is a
// local one, whose stat describes the file as it is now. Unknown types
// count as not local: they are served, not cached.
func localFSType(t int64) bool {
	switch t {
	case unix.EXT4_SUPER_MAGIC, // also ext2 and ext3
		unix.XFS_SUPER_MAGIC,
		unix.BTRFS_SUPER_MAGIC,
		unix.F2FS_SUPER_MAGIC,
		unix.TMPFS_MAGIC,
		unix.RAMFS_MAGIC,
		unix.SQUASHFS_MAGIC,
		unix.OVERLAYFS_SUPER_MAGIC, // containers' root file system
		zfsSuperMagic:
		return true
	}
	return false
}

// zfsSuperMagic is ZFS on Linux's f_type (not in x/sys/unix).
const zfsSuperMagic = 0x2fc12fc1
