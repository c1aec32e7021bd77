package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Disabled is a kill-switch marker: $SKILLBOX_HOME/disabled/NAME, one small JSON file per
// skill. One file per name makes Disable and Enable single atomic operations that the
// CLI (no server running) and the server can both perform without a shared lock.
type Disabled struct {
	By     string    `json:"by,omitempty"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

func (s *Store) marker(name string) (string, error) {
	if !nameRE.MatchString(name) {
		return "", fmt.Errorf("%q: not a skill name", name)
	}
	return filepath.Join(s.disabled, name), nil
}

// Disable records that name is switched off. It holds across restarts until Enable.
// Disabling an already disabled skill replaces the marker.
func (s *Store) Disable(name, by, reason string) error {
	p, err := s.marker(name)
	if err != nil {
		return fmt.Errorf("disable: %w", err)
	}
	data, _ := json.Marshal(Disabled{By: by, At: time.Now().UTC(), Reason: reason})
	tmp, err := os.CreateTemp(s.disabled, ".tmp-")
	if err != nil {
		return fmt.Errorf("disable %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(data)
	if err == nil {
		err = closeSynced(tmp)
	} else {
		tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		return fmt.Errorf("disable %s: %w", name, err)
	}
	syncDir(s.disabled)
	return nil
}

// Enable removes name's marker; enabling a skill that is not disabled is not an error.
func (s *Store) Enable(name string) error {
	p, err := s.marker(name)
	if err != nil {
		return fmt.Errorf("enable: %w", err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("enable %s: %w", name, err)
	}
	syncDir(s.disabled)
	return nil
}

// IsDisabled returns name's marker, or nil when it is enabled. A marker that cannot be
// read counts as disabled (fail closed).
func (s *Store) IsDisabled(name string) (*Disabled, error) {
	p, err := s.marker(name)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return &Disabled{}, fmt.Errorf("disabled state of %s: %w", name, err)
	}
	var d Disabled
	if err := json.Unmarshal(data, &d); err != nil {
		return &Disabled{Reason: "unreadable marker"}, nil
	}
	return &d, nil
}

// DisabledSet returns every disabled skill's marker, by name.
func (s *Store) DisabledSet() (map[string]*Disabled, error) {
	ents, err := os.ReadDir(s.disabled)
	if err != nil {
		return nil, fmt.Errorf("disabled state: %w", err)
	}
	out := map[string]*Disabled{}
	for _, e := range ents {
		if !nameRE.MatchString(e.Name()) {
			continue
		}
		d, err := s.IsDisabled(e.Name())
		if err != nil {
			return nil, err
		}
		if d != nil {
			out[e.Name()] = d
		}
	}
	return out, nil
}

// CompareVersions orders semantic versions (MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]) by
// semver precedence, returning -1, 0 or +1. Build metadata is ignored; strings that are
// not versions sort before those that are, and among themselves lexically.
func CompareVersions(a, b string) int {
	pa, oka := parseVersion(a)
	pb, okb := parseVersion(b)
	switch {
	case !oka && !okb:
		return strings.Compare(a, b)
	case !oka:
		return -1
	case !okb:
		return 1
	}
	for i := range 3 {
		if c := cmpInt(pa.core[i], pb.core[i]); c != 0 {
			return c
		}
	}
	// A version without a prerelease ranks above one with.
	switch {
	case len(pa.pre) == 0 && len(pb.pre) == 0:
		return 0
	case len(pa.pre) == 0:
		return 1
	case len(pb.pre) == 0:
		return -1
	}
	for i := 0; i < len(pa.pre) && i < len(pb.pre); i++ {
		x, y := pa.pre[i], pb.pre[i]
		nx, ex := strconv.ParseUint(x, 10, 64)
		ny, ey := strconv.ParseUint(y, 10, 64)
		var c int
		switch {
		case ex == nil && ey == nil:
			c = cmpInt(nx, ny)
		case ex == nil:
			c = -1 // numeric identifiers rank below alphanumeric ones
		case ey == nil:
			c = 1
		default:
			c = strings.Compare(x, y)
		}
		if c != 0 {
			return c
		}
	}
	return cmpInt(uint64(len(pa.pre)), uint64(len(pb.pre)))
}

type version struct {
	core [3]uint64
	pre  []string
}

func parseVersion(s string) (version, bool) {
	var v version
	s, _, _ = strings.Cut(s, "+")
	core, pre, hasPre := strings.Cut(s, "-")
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return v, false
		}
		v.core[i] = n
	}
	if hasPre {
		v.pre = strings.Split(pre, ".")
	}
	return v, true
}

func cmpInt(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
