//go:build !wasip1

package sdk

// hostCall outside a wasip1 build: there is no skillbox host to ask.
func hostCall([]byte) ([]byte, error) {
	return nil, ErrNotUnderSkillbox
}
