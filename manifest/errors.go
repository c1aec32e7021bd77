package manifest

import "strings"

// Problem is one thing wrong with a manifest, at a field path such as
// "capabilities.network[1]" (empty for the document as a whole).
type Problem struct {
	Path    string
	Message string
}

// String gives "path: message".
func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Error lists every problem found in a manifest, in document order.
type Error struct {
	Problems []Problem
}

// Error gives one problem per line, without a file prefix (callers add "skill.yaml: ").
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Lines gives one string per problem.
func (e *Error) Lines() []string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return lines
}
