//go:build race

package integration

// raceEnabled is true when the tests run under "go test -race" ("make
// test"): TestMain then builds the fe-php binary with -race too, so that a
// data race in the server fails the test that caused it.
const raceEnabled = true
