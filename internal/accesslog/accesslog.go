// Package accesslog writes one line per request, as text (logfmt) or
// JSON, through a buffer flushed every second and on Close, so that
// logging costs no system call per request and loses nothing at exit.
package accesslog

import (
	"bufio"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Entry is what is logged of one request.
type Entry struct {
	Time      time.Time
	RequestID string
	Remote    string
	Method    string
	URI       string // as the client sent it, with the query
	Proto     string
	Status    int
	Bytes     int64
	Duration  time.Duration
	Backend   string
	Rule      int // index of the routing rule in the config, -1 for the default backend
}

// Logger writes entries. It is safe for concurrent use.
type Logger struct {
	json bool

	mu    sync.Mutex
	out   io.Writer
	buf   *bufio.Writer
	file  *os.File // non-nil when Logger owns the output
	path  string
	stop  chan struct{}
	done  chan struct{}
	lines sync.Pool
}

// Open returns a Logger writing to output: "stdout", "stderr" or a file
// path (appended to, created 0644). format is "text" or "json".
func Open(output, format string) (*Logger, error) {
	l := &Logger{json: format == "json", path: output}
	switch output {
	case "stdout":
		l.out = os.Stdout
	case "stderr":
		l.out = os.Stderr
	default:
		f, err := os.OpenFile(output, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		l.out, l.file = f, f
	}
	l.buf = bufio.NewWriterSize(l.out, 64<<10)
	l.lines.New = func() any { b := make([]byte, 0, 256); return &b }
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go l.flushLoop()
	return l, nil
}

func (l *Logger) flushLoop() {
	defer close(l.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.mu.Lock()
			l.buf.Flush()
			l.mu.Unlock()
		case <-l.stop:
			return
		}
	}
}

// Reopen reopens a file output (after log rotation moved it away).
func (l *Logger) Reopen() error {
	if l.file == nil {
		return nil
	}
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.buf.Flush()
	old := l.file
	l.out, l.file = f, f
	l.buf.Reset(f)
	l.mu.Unlock()
	return old.Close()
}

// Close flushes what is buffered and closes a file output.
func (l *Logger) Close() error {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	err := l.buf.Flush()
	if l.file != nil {
		if cerr := l.file.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Log writes one entry.
func (l *Logger) Log(e *Entry) {
	bp := l.lines.Get().(*[]byte)
	b := (*bp)[:0]
	if l.json {
		b = appendJSON(b, e)
	} else {
		b = appendText(b, e)
	}
	l.mu.Lock()
	l.buf.Write(b)
	l.mu.Unlock()
	*bp = b
	l.lines.Put(bp)
}

// appendText formats e as one logfmt line.
func appendText(b []byte, e *Entry) []byte {
	b = e.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, " id="...)
	b = appendLogfmtValue(b, e.RequestID)
	b = append(b, " remote="...)
	b = appendLogfmtValue(b, e.Remote)
	b = append(b, " method="...)
	b = appendLogfmtValue(b, e.Method)
	b = append(b, " uri="...)
	b = appendLogfmtValue(b, e.URI)
	b = append(b, " proto="...)
	b = appendLogfmtValue(b, e.Proto)
	b = append(b, " status="...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, " bytes="...)
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, " duration_ms="...)
	b = strconv.AppendFloat(b, float64(e.Duration.Microseconds())/1000, 'f', 3, 64)
	b = append(b, " backend="...)
	b = append(b, e.Backend...)
	b = append(b, " rule="...)
	b = appendRule(b, e.Rule)
	return append(b, '\n')
}

func appendRule(b []byte, rule int) []byte {
	if rule < 0 {
		return append(b, "default"...)
	}
	return strconv.AppendInt(b, int64(rule), 10)
}

// appendLogfmtValue writes s bare if it is safe, else quoted.
func appendLogfmtValue(b []byte, s string) []byte {
	if s == "" {
		return append(b, `""`...)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '"' || c == '=' || c == '\\' || c >= utf8.RuneSelf {
			return strconv.AppendQuote(b, s)
		}
	}
	return append(b, s...)
}

// appendJSON formats e as one JSON object line.
func appendJSON(b []byte, e *Entry) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z")
	b = append(b, `","id":`...)
	b = appendJSONString(b, e.RequestID)
	b = append(b, `,"remote":`...)
	b = appendJSONString(b, e.Remote)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, e.Method)
	b = append(b, `,"uri":`...)
	b = appendJSONString(b, e.URI)
	b = append(b, `,"proto":`...)
	b = appendJSONString(b, e.Proto)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.Bytes, 10)
	b = append(b, `,"duration_ms":`...)
	b = strconv.AppendFloat(b, float64(e.Duration.Microseconds())/1000, 'f', 3, 64)
	b = append(b, `,"backend":`...)
	b = appendJSONString(b, e.Backend)
	b = append(b, `,"rule":`...)
	if e.Rule < 0 {
		b = append(b, `"default"`...)
	} else {
		b = strconv.AppendInt(b, int64(e.Rule), 10)
	}
	return append(b, "}\n"...)
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string; invalid UTF-8 becomes
// U+FFFD, so that every line parses.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c < ' ' || c == 0x7f:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
