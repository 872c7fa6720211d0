//go:build fephp_bridge

package integration

func init() { buildTags = "fephp_bridge" }
