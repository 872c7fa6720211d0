package embed

/*
#cgo CFLAGS: -D_GNU_SOURCE
#cgo LDFLAGS: -ldl
#include <stdlib.h>
#include "loader.h"
*/
import "C"

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

func init() {
	// The main goroutine keeps the main thread: PHP starts there, and no
	// request ever runs PHP on it (its stack is RLIMIT_STACK's, not ours).
	runtime.LockOSThread()
}

// loadLibPHP opens libphp and the bridge, and checks that they fit: a
// thread-safe libphp of the extension API the bridge was built for.
func loadLibPHP(path string, bridgeSO []byte) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("php.libphp_path %s: %w (build it with scripts/build-php.sh)", path, unwrapPathErr(err))
	}
	if st.IsDir() {
		return fmt.Errorf("php.libphp_path %s is a directory, want the libphp.so file", path)
	}
	if len(bridgeSO) == 0 {
		return fmt.Errorf("this fe-php binary was built without the embedded backend's PHP bridge (build it with \"make build\", which compiles the bridge against the PHP headers)")
	}
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	if C.fephp_open_libphp(cpath) != 0 {
		return fmt.Errorf("php.libphp_path %s: cannot load it as a shared library: %s (want the libphp.so of a ZTS PHP built with --enable-embed)", path, C.GoString(C.fephp_dlerror()))
	}
	if C.fephp_libphp_is_php() == 0 {
		return fmt.Errorf("php.libphp_path %s is not libphp: it exports no php_module_startup (want the libphp.so of a ZTS PHP built with --enable-embed)", path)
	}
	if C.fephp_libphp_is_zts() == 0 {
		return fmt.Errorf("php.libphp_path %s is a non-thread-safe (NTS) PHP build; the embedded backend needs ZTS (configure --enable-zts, as scripts/build-php.sh does)", path)
	}
	fd, err := unix.MemfdCreate("fe-php-bridge", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("loading the PHP bridge: memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), "fe-php-bridge")
	defer f.Close()
	if _, err := f.Write(bridgeSO); err != nil {
		return fmt.Errorf("loading the PHP bridge: %w", err)
	}
	cbridge := C.CString("/proc/self/fd/" + strconv.Itoa(fd))
	defer C.free(unsafe.Pointer(cbridge))
	if e := C.fephp_open_bridge(cbridge); e != nil {
		return fmt.Errorf("php.libphp_path %s: the PHP bridge does not load against it: %s", path, C.GoString(e))
	}
	if abi := int(C.fephp_bridge_abi()); abi != C.FEPHP_ABI {
		return fmt.Errorf("the PHP bridge has ABI %d, this fe-php wants %d: rebuild with \"make build\"", abi, C.FEPHP_ABI)
	}
	want := C.GoString(C.fephp_bridge_build_id())
	if got, err := libBuildID(path, want); err != nil {
		return fmt.Errorf("php.libphp_path %s: %w", path, err)
	} else if got != want {
		return fmt.Errorf("php.libphp_path %s is built for PHP extension API %s, but this fe-php's bridge was built for %s (PHP %s): point libphp_path at a matching ZTS build, or rebuild fe-php against this one",
			path, got, want, C.GoString(C.fephp_bridge_php_version()))
	}
	return nil
}

var buildIDRE = regexp.MustCompile(`API\d{8},N?TS[A-Za-z0-9,_-]*`)

// libBuildID finds the extension API build id ("API20220829,TS") that
// libphp's own modules carry. The library reports its version only once
// PHP has started, and a mismatch must be caught before.
func libBuildID(path, want string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if bytes.Contains(data, append([]byte(want), 0)) {
		return want, nil
	}
	if m := buildIDRE.Find(data); m != nil {
		return string(m), nil
	}
	return "", fmt.Errorf("no PHP extension API id found in it: is it libphp?")
}

func unwrapPathErr(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// PHPVersion is the PHP version the embedded backend runs (PHP_VERSION of
// the headers its bridge was built with).
func (b *Backend) PHPVersion() string { return C.GoString(C.fephp_bridge_php_version()) }
