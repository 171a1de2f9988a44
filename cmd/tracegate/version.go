package main

import (
	"fmt"
	"io"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...", as the
// release build does. When it is not, versionInfo reads the module version
// that `go install module@version` records in the binary.
var version = ""

// buildInfo is what `tracegate version` prints.
type buildInfo struct {
	Version  string // v1.2.3, a pseudo-version, or "(devel)"
	Revision string // VCS revision, when built from a checkout or a module version
	Time     string // VCS commit time, RFC 3339
	Modified bool   // the checkout had uncommitted changes
	Go       string // toolchain version
}

// readBuildInfo combines the -ldflags version with what the Go toolchain
// recorded (go help buildinfo: the main module's version and the vcs.*
// settings).
func readBuildInfo(ldflagsVersion string, bi *debug.BuildInfo, ok bool) buildInfo {
	var info buildInfo
	if ok {
		info.Version = bi.Main.Version
		info.Go = bi.GoVersion
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.time":
				info.Time = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if ldflagsVersion != "" {
		info.Version = ldflagsVersion
	}
	if info.Version == "" {
		info.Version = "(devel)"
	}
	return info
}

// String is one line: tracegate v1.2.3 (rev 0123abcd..., 2026-12-04T21:00:00Z, go1.26.8).
func (b buildInfo) String() string {
	var extra []string
	if b.Revision != "" {
		rev := b.Revision
		if b.Modified {
			rev += "+modified"
		}
		extra = append(extra, "rev "+rev)
	}
	if b.Time != "" {
		extra = append(extra, b.Time)
	}
	if b.Go != "" {
		extra = append(extra, b.Go)
	}
	if len(extra) == 0 {
		return "tracegate " + b.Version
	}
	return fmt.Sprintf("tracegate %s (%s)", b.Version, strings.Join(extra, ", "))
}

// currentBuild is this binary's build information, read once.
var currentBuild = func() buildInfo {
	bi, ok := debug.ReadBuildInfo()
	return readBuildInfo(version, bi, ok)
}()

func versionCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("version", "", "Print the module version, VCS revision and time, and Go version of this binary.", stdout, stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	fmt.Fprintln(stdout, currentBuild)
	return exitOK
}
