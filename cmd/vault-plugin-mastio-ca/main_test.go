package main

import (
	"testing"

	hclog "github.com/hashicorp/go-hclog"
)

func TestNewLogger(t *testing.T) {
	for _, tc := range []struct {
		env      string
		want     hclog.Level
		badLevel bool
	}{
		{"", hclog.Info, false},
		{"debug", hclog.Debug, false},
		{"TRACE", hclog.Trace, false},
		{"warn", hclog.Warn, false},
		{"loud", hclog.Info, true},
	} {
		l, bad := newLogger(tc.env)
		if l.GetLevel() != tc.want || bad != tc.badLevel {
			t.Errorf("newLogger(%q) = level %v, bad %v; want %v, %v", tc.env, l.GetLevel(), bad, tc.want, tc.badLevel)
		}
	}
}
