package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pelletier/go-toml/v2"
)

// Error is one problem found in a configuration, located by file, line
// and key where they are known.
type Error struct {
	File string // config file, "" if none
	Line int    // 1-based, 0 if unknown
	Key  string // dotted key, e.g. "backend.routing_rules[2].priority"
	Msg  string
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Errors is every problem found in a configuration.
type Errors []*Error

func (es Errors) Error() string {
	msgs := make([]string, len(es))
	for i, e := range es {
		msgs[i] = e.Error()
	}
	return strings.Join(msgs, "\n")
}

// Load reads, defaults and validates the configuration file at path. The
// error, if any, is an Errors listing every problem found.
func Load(path string) (*Config, error) {
	cfg, _, err := Read(path)
	return cfg, err
}

// Read is Load that also returns the bytes it read, for a process that
// hands the very file it validated to others (the supervisor's workers).
func Read(path string) (*Config, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, Errors{{Msg: fmt.Sprintf("cannot read config: %v", err)}}
	}
	cfg, err := Parse(path, data)
	if err != nil {
		return nil, nil, err
	}
	return cfg, data, nil
}

// Parse is Load for a file already read into memory.
func Parse(path string, data []byte) (*Config, error) {
	cfg := Default()
	cfg.File = path
	if errs := decode(path, data, &cfg); len(errs) > 0 {
		return nil, errs
	}
	pos := indexPositions(data)
	cfg.resolvePaths()
	if errs := cfg.validate(path, pos); len(errs) > 0 {
		return nil, errs
	}
	return &cfg, nil
}

// decode fills cfg from data, refusing unknown keys and wrong types.
func decode(path string, data []byte, cfg *Config) Errors {
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	dec.EnableUnmarshalerInterface() // Addresses: a string or an array
	err := dec.Decode(cfg)
	if err == nil {
		return nil
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		errs := make(Errors, 0, len(strict.Errors))
		for i := range strict.Errors {
			e := &strict.Errors[i]
			line, _ := e.Position()
			key := strings.Join(e.Key(), ".")
			msg := "unknown key"
			if s := suggest(e.Key(), cfg); s != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", s)
			}
			errs = append(errs, &Error{File: path, Line: line, Key: key, Msg: msg})
		}
		return errs
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, _ := de.Position()
		return Errors{{File: path, Line: line, Key: strings.Join(de.Key(), "."), Msg: plainTOMLError(de.Error())}}
	}
	return Errors{{File: path, Msg: err.Error()}}
}

// plainTOMLError rewords go-toml's messages, which name Go types, in the
// config file's terms.
func plainTOMLError(msg string) string {
	msg = strings.TrimPrefix(msg, "toml: ")
	if i := strings.Index(msg, " into struct field "); i >= 0 {
		want := msg[strings.LastIndex(msg, " of type ")+len(" of type "):]
		switch {
		case strings.HasPrefix(want, "int"):
			want = "an integer"
		case want == "bool" || want == "*bool":
			want = "true or false"
		case want == "string":
			want = "a string"
		case strings.HasSuffix(want, "config.Size"):
			want = `a size such as "256M" or an integer number of bytes`
		case strings.HasSuffix(want, "config.Duration"):
			want = `a duration string such as "30s"`
		case strings.HasPrefix(want, "[]"):
			want = "an array"
		default:
			want = "a table"
		}
		got := strings.TrimPrefix(msg[:i], "cannot decode TOML ")
		return fmt.Sprintf("wrong type: got a TOML %s, want %s", got, want)
	}
	return msg
}

// resolvePaths makes relative paths relative to the config file's
// directory, and fills keys whose default is another key.
func (c *Config) resolvePaths() {
	dir := "."
	if c.File != "" {
		dir = filepath.Dir(c.File)
	}
	// Absolute, so that the paths stay right whatever the working
	// directory (and a path filled from another is not joined twice).
	if a, err := filepath.Abs(dir); err == nil {
		dir = a
	}
	abs := func(p *string) {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(dir, *p)
		}
	}
	abs(&c.PHP.DocumentRoot)
	abs(&c.PHP.LibPHPPath)
	if c.PHP.INIFile != "none" {
		abs(&c.PHP.INIFile)
	}
	abs(&c.Server.TempDir)
	abs(&c.Server.PIDFile)
	abs(&c.Server.TLS.CertFile)
	abs(&c.Server.TLS.KeyFile)
	abs(&c.Server.TLS.ACMECARoot)
	abs(&c.Server.TLS.StorageDir)
	sf := &c.Backend.StaticFiles
	if sf.Root == "" {
		sf.Root = c.PHP.DocumentRoot
	}
	abs(&sf.Root)
	if out := c.Server.AccessLog.Output; out != "off" && out != "stdout" && out != "stderr" {
		abs(&c.Server.AccessLog.Output)
	}
	fpmAbs := func(as Addresses) {
		for i := range as {
			if strings.ContainsRune(as[i], '/') {
				abs(&as[i])
			}
		}
	}
	fpmAbs(c.PHP.FPMSocket)
	for _, p := range c.PHP.FPM {
		fpmAbs(p.FPMSocket)
	}
}
