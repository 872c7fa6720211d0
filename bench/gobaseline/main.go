// Command gobaseline is a benchmark yardstick, not part of fe-php: the
// least a Go net/http server can do to serve a docroot, so that
// bench/static.sh (BASELINE=1) can tell fe-php's own per-request cost from
// net/http's.
//
//	gobaseline -listen 127.0.0.1:18082 -root DIR -mode fileserver
//	gobaseline -listen 127.0.0.1:18083 -root DIR -mode memory
//
// fileserver: http.FileServer(http.Dir(root)), the standard library's
// static server (open, stat, http.ServeContent per request).
// memory: every file under root read once at start; a request writes the
// bytes with Content-Type and Content-Length (no open, no stat, no
// conditional or range handling): net/http's floor.
// memory-http1: the same handler on fe-php's HTTP/1.1 loop
// (internal/http1): that loop's floor.
package main

import (
	"flag"
	"log"
	"mime"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/fe-php/fe-php/internal/http1"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18082", "address")
	root := flag.String("root", ".", "docroot")
	mode := flag.String("mode", "fileserver", "fileserver, memory or memory-http1")
	flag.Parse()

	var h http.Handler
	switch *mode {
	case "fileserver":
		h = http.FileServer(http.Dir(*root))
	case "memory", "memory-http1":
		h = memoryHandler(*root)
	default:
		log.Fatalf("unknown -mode %q", *mode)
	}
	if *mode == "memory-http1" {
		ln, err := net.Listen("tcp", *listen)
		if err != nil {
			log.Fatal(err)
		}
		s := &http1.Server{Handler: h, Fallback: &http.Server{Handler: h}}
		log.Fatal(s.Serve(ln))
	}
	log.Fatal(http.ListenAndServe(*listen, h))
}

type file struct {
	body  []byte
	ctype []string
	clen  []string
}

func memoryHandler(root string) http.Handler {
	files := map[string]*file{}
	ents, err := os.ReadDir(root)
	if err != nil {
		log.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, e.Name()))
		if err != nil {
			log.Fatal(err)
		}
		ct := mime.TypeByExtension(path.Ext(e.Name()))
		if ct == "" {
			ct = "application/octet-stream"
		}
		files["/"+e.Name()] = &file{b, []string{ct}, []string{strconv.Itoa(len(b))}}
	}
	files["/"] = files["/index.html"]
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f := files[r.URL.Path]
		if f == nil {
			http.NotFound(w, r)
			return
		}
		w.Header()["Content-Type"] = f.ctype
		w.Header()["Content-Length"] = f.clen
		w.Write(f.body)
	})
}
