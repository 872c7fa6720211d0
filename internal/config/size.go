package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Size is a byte count. In TOML it is an integer (bytes) or a string with
// a binary unit, as php.ini writes it: "512K", "256M", "1G" (a trailing
// "B" or "iB" is accepted too: "256MB", "256MiB").
type Size int64

// UnmarshalText parses a size string.
func (s *Size) UnmarshalText(b []byte) error {
	v, err := ParseSize(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// String formats s the way it is written in a config file.
func (s Size) String() string {
	for _, u := range []struct {
		suffix string
		shift  uint
	}{{"G", 30}, {"M", 20}, {"K", 10}} {
		if s != 0 && s%(1<<u.shift) == 0 {
			return strconv.FormatInt(int64(s)>>u.shift, 10) + u.suffix
		}
	}
	return strconv.FormatInt(int64(s), 10)
}

// ParseSize parses "256M"-style sizes; see Size.
func ParseSize(str string) (Size, error) {
	t := strings.TrimSpace(str)
	if u := strings.TrimSuffix(t, "iB"); u != t {
		t = u
	} else {
		t = strings.TrimSuffix(t, "B")
	}
	shift := uint(0)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K', 'k':
			shift = 10
		case 'M', 'm':
			shift = 20
		case 'G', 'g':
			shift = 30
		}
		if shift > 0 {
			t = t[:n-1]
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(t), 10, 64)
	if err != nil || n < 0 || n > (1<<62)>>shift {
		return 0, fmt.Errorf("invalid size %q: want a number of bytes or a number with K, M or G, like \"256M\"", str)
	}
	return Size(n << shift), nil
}

// Duration is a time span: a Go duration string ("30s", "500ms", "2m")
// or an integer number of seconds, like the specification's *_secs keys;
// 0 means none. It is a struct so that the decoder hands integers to
// UnmarshalText instead of storing them as nanoseconds.
type Duration struct{ time.Duration }

// UnmarshalText parses a duration string or a number of seconds.
func (d *Duration) UnmarshalText(b []byte) error {
	if secs, err := strconv.ParseInt(string(b), 10, 64); err == nil && secs >= 0 && secs < 1<<32 {
		d.Duration = time.Duration(secs) * time.Second
		return nil
	}
	v, err := time.ParseDuration(string(b))
	if err != nil || v < 0 {
		return fmt.Errorf("invalid duration %q: want a string like \"30s\", \"500ms\" or \"2m\", or a number of seconds", b)
	}
	d.Duration = v
	return nil
}
