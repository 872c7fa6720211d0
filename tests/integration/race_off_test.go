//go:build !race

package integration

// raceEnabled is true when the tests run under "go test -race" (see
// race_on_test.go).
const raceEnabled = false
