//go:build !linux

package container

import "testing"

const childDirEnv = "SKILLBOX_TEST_CHILD_DIR"

func childMain(m *testing.M) int { return m.Run() }
