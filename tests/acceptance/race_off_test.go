//go:build !race

package acceptance

// raceEnabled reports that the tests run under -race.
const raceEnabled = false
