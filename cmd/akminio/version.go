package main

import (
	"context"
	"flag"
	"runtime"
	"runtime/debug"
)

// version and commit are stamped by the Makefile:
//
//	-ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)"
//
// Unstamped builds fall back to the module version and VCS revision Go records.
var (
	version = ""
	commit  = ""
)

// versionCommand is the `version` command.
func versionCommand() command {
	return command{
		name:    "version",
		summary: "print version, commit and Go version",
		setup: func(*flag.FlagSet) runFunc {
			return func(_ context.Context, s *session) int {
				v, c := buildVersion()
				s.printf("akminio %s\ncommit %s\n%s %s/%s\n", v, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
				return exitOK
			}
		},
	}
}

// buildVersion returns the stamped version and commit, or what the build info records.
// The version command reads no config: it must work on a host that has none yet.
func buildVersion() (v, c string) {
	v, c = version, commit
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" {
			v = info.Main.Version
		}
		for _, kv := range info.Settings {
			if c == "" && kv.Key == "vcs.revision" {
				c = kv.Value
			}
		}
	}
	if v == "" {
		v = "(devel)"
	}
	if c == "" {
		c = "unknown"
	}
	return v, c
}
