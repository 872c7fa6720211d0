//go:build !fephp_bridge

package embed

// bridgeSO is empty: this build has no PHP bridge ("make build" adds it).
var bridgeSO []byte
