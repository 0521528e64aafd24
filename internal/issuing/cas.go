package issuing

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Current describes the stored version of a CA for the check-and-set
// rules.
type Current struct {
	Label       string // "Org CA", "Mastio Intermediate CA"
	Exists      bool
	Version     int    // 0 when none exists
	Fingerprint string // sha256 of the stored certificate, for messages
}

// CheckCreateOnly applies the create-only rule of generate and import:
// with no CA, cas must be absent or 0; with a CA, cas must equal its
// version. It returns a KindConflict error otherwise.
func CheckCreateOnly(cur Current, cas int, casSet bool) error {
	switch {
	case !cur.Exists && (!casSet || cas == 0):
		return nil
	case !cur.Exists:
		return Conflictf("check-and-set failed: no %s exists (version 0) but cas=%d was given; omit cas or pass cas=0 to create one", cur.Label, cas)
	case !casSet:
		return Conflictf("%s %s already exists (version %d, sha256 fingerprint %s); this path is create-only: pass cas=%d to replace it", article(cur.Label), cur.Label, cur.Version, cur.Fingerprint, cur.Version)
	}
	return CheckIfVersion(cur, cas, casSet)
}

// CheckIfVersion applies an optional check-and-set (rotate): when cas is
// given it must equal the current version.
func CheckIfVersion(cur Current, cas int, casSet bool) error {
	if casSet && cas != cur.Version {
		return Conflictf("check-and-set failed: cas=%d but the current %s version is %d", cas, cur.Label, cur.Version)
	}
	return nil
}

// ParseCAS reads a cas value that JSON clients may send as a number or a
// string of digits (KV v2's options.cas). field names it in messages; the
// value itself is never quoted.
func ParseCAS(field string, v any) (int, error) {
	var n int64
	var err error
	switch c := v.(type) {
	case int:
		n = int64(c)
	case int64:
		n = c
	case float64:
		if c != float64(int64(c)) {
			return 0, Inputf("%s must be a whole number", field)
		}
		n = int64(c)
	case json.Number:
		n, err = c.Int64()
	case string:
		n, err = strconv.ParseInt(c, 10, 64)
	default:
		return 0, Inputf("%s must be a number", field)
	}
	if err != nil || n < 0 || n > 1<<31 {
		return 0, Inputf("%s must be a non-negative whole number", field)
	}
	return int(n), nil
}

// article is "an" before a label that starts with a vowel, else "a".
func article(label string) string {
	if label != "" && strings.ContainsRune("AEIOUaeiou", rune(label[0])) {
		return "an"
	}
	return "a"
}
