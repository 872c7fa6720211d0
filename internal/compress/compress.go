// Package compress compresses HTTP responses on the fly: PHP output from
// both PHP backends and static files, as an http.Handler middleware
// ([server.compression] in the configuration).
//
// The coding is negotiated from Accept-Encoding (zstd, br or gzip, with
// q-values). A response is compressed only if it is worth it and safe:
//
//   - the request is not HEAD and has no Range header;
//   - the status is not 1xx, 204, 206 or 304;
//   - the response has no Content-Encoding already (PHP's
//     zlib.output_compression or ob_gzhandler, a precompressed static
//     sibling) and no Cache-Control: no-transform;
//   - its media type is one of Options.Types;
//   - it is at least Options.MinLength bytes long. A response of unknown
//     length (PHP output) is held back until that many bytes have come
//     or the handler flushes; one that ends shorter goes out as it is,
//     with a Content-Length.
//
// A compressed response loses its Content-Length and Accept-Ranges, and
// its ETag becomes weak (the bytes differ from the identity
// representation's). Vary: Accept-Encoding is added to every response
// whose headers allow compression, compressed or not, so that caches
// keep the representations apart.
//
// Flushing the wrapped writer (http.Flusher or http.ResponseController)
// pushes what was written through the encoder to the client, so that
// streamed output keeps streaming. Hijack completes a compressed body
// first; see [Compressor.Wrap].
package compress

import (
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Options configures compression ([server.compression] in the config).
type Options struct {
	// Algorithms are the codings offered, in the server's order of
	// preference, which breaks ties between codings a client accepts
	// with the same q-value: a subset of "zstd", "br" and "gzip".
	// Empty: all three, in that order: zstd is the fastest, brotli
	// compresses about 10% smaller than either but, in pure Go, several
	// times slower.
	Algorithms []string

	// MinLength is the length below which a response is sent as it is
	// (0: DefaultMinLength).
	MinLength int64

	// Types are the media types to compress, compared without
	// parameters and case-insensitively: "text/html" exactly, or
	// "text/*" for a whole top-level type. Empty: DefaultTypes().
	Types []string
}

// DefaultMinLength is the MinLength of Options that leave it 0. A body
// under 1 KiB fits in one TCP segment along with its headers whether
// compressed or not, so compressing it saves no round trip, and the
// coding's own overhead eats much of what it saves.
const DefaultMinLength = 1024

// defaultTypes (see DefaultTypes) leaves out the formats compressed
// already (JPEG, PNG, GIF, WebP, AVIF, WOFF/WOFF2, audio, video,
// archives, PDF): compressing them again costs CPU and saves nothing.
var defaultTypes = []string{
	"text/*",
	"application/json",
	"application/ld+json",
	"application/manifest+json",
	"application/problem+json",
	"application/geo+json",
	"application/x-ndjson",
	"application/javascript",
	"application/x-javascript",
	"application/ecmascript",
	"application/xml",
	"application/xhtml+xml",
	"application/rss+xml",
	"application/atom+xml",
	"application/yaml",
	"application/wasm",
	"application/vnd.ms-fontobject",
	"image/svg+xml",
	"image/x-icon",
	"image/vnd.microsoft.icon",
	"image/bmp",
	"font/ttf",
	"font/otf",
}

// DefaultTypes returns the media types compressed when Options.Types is
// empty: text/* and the formats that are text in disguise (JSON,
// JavaScript, XML and its feeds, SVG), plus the binary formats usually
// stored uncompressed (WebAssembly, TrueType and OpenType fonts, EOT,
// icons, BMP).
func DefaultTypes() []string { return append([]string(nil), defaultTypes...) }

// A Compressor compresses the responses of the handlers it wraps. It is
// safe for concurrent use.
type Compressor struct {
	codings   []*coding           // offered, in order of preference
	minLength int64               // compress from this many bytes on
	types     map[string]struct{} // "text/html", "text/*"
}

// New returns a Compressor for opts. Its errors name the option at fault.
func New(opts Options) (*Compressor, error) {
	c := &Compressor{minLength: opts.MinLength, types: make(map[string]struct{})}
	if c.minLength < 0 {
		return nil, fmt.Errorf("compress: MinLength %d is negative", opts.MinLength)
	}
	if c.minLength == 0 {
		c.minLength = DefaultMinLength
	}

	algs := opts.Algorithms
	if len(algs) == 0 {
		algs = []string{"zstd", "br", "gzip"}
	}
	for _, name := range algs {
		cd := codingNamed(name)
		if cd == nil {
			return nil, fmt.Errorf("compress: Algorithms: unknown algorithm %q (want \"zstd\", \"br\" or \"gzip\")", name)
		}
		for _, have := range c.codings {
			if have == cd {
				return nil, fmt.Errorf("compress: Algorithms: %q is listed twice", name)
			}
		}
		c.codings = append(c.codings, cd)
	}

	types := opts.Types
	if len(types) == 0 {
		types = defaultTypes
	}
	for _, t := range types {
		mt, err := parseTypePattern(t)
		if err != nil {
			return nil, fmt.Errorf("compress: Types: %q: %v", t, err)
		}
		c.types[mt] = struct{}{}
	}
	return c, nil
}

// parseTypePattern checks a media type of Options.Types and returns it in
// lower case.
func parseTypePattern(t string) (string, error) {
	if strings.ContainsAny(t, "; \t") {
		return "", fmt.Errorf("want a bare media type such as \"text/html\" or \"text/*\", without parameters or spaces")
	}
	typ, sub, ok := strings.Cut(strings.ToLower(t), "/")
	switch {
	case !ok || typ == "" || sub == "":
		return "", fmt.Errorf("want type/subtype, such as \"text/html\" or \"text/*\"")
	case typ == "*":
		return "", fmt.Errorf("the top-level type cannot be a wildcard: list the types worth compressing (images and archives are compressed already)")
	case !isToken(typ) || (sub != "*" && !isToken(sub)):
		return "", fmt.Errorf("not a valid media type")
	}
	return typ + "/" + sub, nil
}

// isToken reports whether s is a token (RFC 9110 5.6.2) without "*",
// which only a whole subtype may be.
func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || c == '*' || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// typeQualifies reports whether a Content-Type value names one of the
// media types to compress.
func (c *Compressor) typeQualifies(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.Trim(mt, " \t")
	// Lower-case into a stack buffer: a map lookup keyed by
	// string(bytes) does not allocate.
	var buf [128]byte
	if len(mt) == 0 || len(mt)+1 > len(buf) {
		return false
	}
	slash := -1
	for i := 0; i < len(mt); i++ {
		b := mt[i]
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if b == '/' && slash < 0 {
			slash = i
		}
		buf[i] = b
	}
	if slash <= 0 || slash == len(mt)-1 {
		return false
	}
	if _, ok := c.types[string(buf[:len(mt)])]; ok {
		return true
	}
	buf[slash+1] = '*'
	_, ok := c.types[string(buf[:slash+2])]
	return ok
}

// Wrap returns a handler that compresses next's responses.
//
// The ResponseWriter next sees keeps what the one it wraps can do:
// http.Flusher (flushing the encoder first), io.ReaderFrom (sendfile for
// a file sent as it is), http.Hijacker, and Unwrap for
// http.ResponseController (deadlines, full duplex).
//
// Hijack on a response being compressed first completes the compressed
// body (the encoder's final bytes) and flushes it, so that the handler
// takes over a connection whose response body is whole. If the response
// is chunked because compression removed the Content-Length the handler
// had set, Hijack also writes the last chunk, since the handler expects
// a body delimited by its length; a handler that set no length ends the
// chunked body itself, as it would have without compression.
//
// If next panics, the response is left incomplete (no final bytes), so
// that net/http's breaking of the connection shows the client that the
// body is truncated.
func (c *Compressor) Wrap(next http.Handler) http.Handler { return c.WrapWith(next, nil) }

// WrapWith is Wrap with prepare, which is given the response's headers
// and final status just before they decide about compression: the
// server's configured headers go in there, so that a configured
// Cache-Control: no-transform is obeyed.
func (c *Compressor) WrapWith(next http.Handler, prepare func(h http.Header, status int)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cw := c.newWriter(w, r)
		cw.prepare = prepare
		next.ServeHTTP(cw, r)
		// Not deferred: after a panic the response must stay unfinished.
		cw.finish()
		putWriter(cw)
	})
}

// A coding is a content coding the server can apply.
type coding struct {
	name   string     // its token in Accept-Encoding and Content-Encoding
	header []string   // the Content-Encoding value, shared by all responses
	pool   *sync.Pool // of *encoder
}

// The encoders' settings suit content compressed as it is served: fast
// levels, and windows of 256 KiB, enough for nearly every response,
// rather than the multi-MiB defaults every pooled encoder would keep.
// On a 20 KiB HTML page (go_spec.html), zstd's SpeedDefault (level 3)
// and gzip's level 5 both compress to about a third at around 200 MB/s
// a core; brotli's quality 5 compresses 7% smaller than gzip's but, in
// pure Go, at about 35 MB/s.
var (
	zstdCoding = &coding{name: "zstd", header: []string{"zstd"}, pool: &sync.Pool{New: func() any {
		z, err := zstd.NewWriter(nil,
			zstd.WithEncoderConcurrency(1), // no goroutines of its own: one response, one goroutine
			zstd.WithEncoderLevel(zstd.SpeedDefault),
			zstd.WithWindowSize(256<<10),
			zstd.WithLowerEncoderMem(true))
		if err != nil {
			panic(err) // the options are constants
		}
		return newEncoder(z)
	}}}
	brotliCoding = &coding{name: "br", header: []string{"br"}, pool: &sync.Pool{New: func() any {
		// Quality 5 compresses better than gzip's best, for little more
		// time than quality 4.
		return newEncoder(brotli.NewWriterOptions(nil, brotli.WriterOptions{Quality: 5, LGWin: 18}))
	}}}
	gzipCoding = &coding{name: "gzip", header: []string{"gzip"}, pool: &sync.Pool{New: func() any {
		z, err := gzip.NewWriterLevel(nil, 5)
		if err != nil {
			panic(err)
		}
		return newEncoder(z)
	}}}
)

// allCodings are the codings there are; New offers each at most once.
var allCodings = [...]*coding{zstdCoding, brotliCoding, gzipCoding}

// codingNamed returns the coding an Options.Algorithms entry names.
func codingNamed(name string) *coding {
	for _, cd := range allCodings {
		if equalFold(name, cd.name) {
			return cd
		}
	}
	return nil
}
