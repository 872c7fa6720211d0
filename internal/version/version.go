// Package version holds fe-php's version, set at build time with
// -ldflags "-X github.com/fe-php/fe-php/internal/version.Version=v1.2.3".
package version

// Version is fe-php's version ("dev" in an unstamped build).
var Version = "dev"

// ServerSoftware is what PHP sees as SERVER_SOFTWARE.
func ServerSoftware() string { return "fe-php/" + Version }
