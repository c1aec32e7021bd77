// Package buildinfo reads what the Go toolchain recorded about this binary: the module
// version, the commit and the toolchain. The CLI prints it (`skillbox version`) and
// the metrics export it (skillbox_build_info).
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Info is the binary's version, as recorded at build time.
type Info struct {
	Version   string // the module version, or "devel"
	Commit    string // the first 12 hex digits of the commit, "+dirty" if modified; "" if not recorded
	GoVersion string // e.g. go1.26.8
}

// Read returns the binary's build information.
func Read() Info {
	in := Info{Version: "devel", GoVersion: runtime.Version()}
	dirty := false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			in.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				in.Commit = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	if len(in.Commit) > 12 {
		in.Commit = in.Commit[:12]
	}
	if in.Commit != "" && dirty {
		in.Commit += "+dirty"
	}
	return in
}

// Line is what `skillbox version` prints after the name: the version, the commit when
// the build recorded it, the toolchain and the platform.
func (in Info) Line() string {
	v := in.Version
	if in.Commit != "" {
		v += " (commit " + in.Commit + ")"
	}
	return fmt.Sprintf("%s %s %s/%s", v, in.GoVersion, runtime.GOOS, runtime.GOARCH)
}
