//go:build fephp_bridge

package embed

import _ "embed"

// bridgeSO is the PHP SAPI bridge, compiled against the PHP headers by
// "make bridge" (see the Makefile) and loaded from memory at start.
//
//go:embed bridge/fephp-bridge.so
var bridgeSO []byte
