// Package reasons is the vocabulary of why a call failed or was refused. A Reason is
// the machine-readable word callers branch on (the wire API's ErrorDetail.reason, the
// audit log's reason, the metrics' outcome); its Category is the kind of failure, which
// each front door turns into its own status (runtime/server: a gRPC code).
//
// This package holds only the two types, in the style of containerd's errdefs: the
// packages that produce reasons declare them with their categories (isolation the
// sandbox's, the engine its own, a door its own), each delegating to the one below, so
// a sandbox never learns the engine's words and a door maps categories, not words.
package reasons

import "strconv"

// Reason is a machine-readable cause of a failed or refused call, UPPER_SNAKE_CASE.
// Its spelling is part of the wire API: clients branch on it, so a reason is never
// renamed.
type Reason string

// Category is the kind of a failure: what the caller can do about it. Doors map each
// category to one status of their protocol; the names follow gRPC's codes, which most
// protocols' statuses can be mapped onto.
type Category uint8

// Categories. The zero value is Internal, so a reason nobody declared reads as
// skillbox's own failure, never as the caller's.
const (
	// Internal is skillbox's own failure: nothing the caller did or can change.
	Internal Category = iota
	// InvalidArgument is a request that can never succeed as it is (bad input).
	InvalidArgument
	// Unauthenticated is a caller whose identity could not be established.
	Unauthenticated
	// PermissionDenied is a caller, skill or request not allowed to do this.
	PermissionDenied
	// NotFound is a request naming something that does not exist.
	NotFound
	// ResourceExhausted is a budget or a limit that was used up.
	ResourceExhausted
	// DeadlineExceeded is a time budget that ran out.
	DeadlineExceeded
	// FailedPrecondition is a state of the system that refuses the call until an
	// operator changes it (the kill switch).
	FailedPrecondition
	// Aborted is a call that ran and failed on its own terms (the skill's failure).
	Aborted
	// Canceled is a call ended by its caller or by the operator.
	Canceled
	// Unavailable is a part skillbox needs that is not running now (a retry may work).
	Unavailable

	numCategories // keep last
)

func (c Category) String() string {
	switch c {
	case Internal:
		return "Internal"
	case InvalidArgument:
		return "InvalidArgument"
	case Unauthenticated:
		return "Unauthenticated"
	case PermissionDenied:
		return "PermissionDenied"
	case NotFound:
		return "NotFound"
	case ResourceExhausted:
		return "ResourceExhausted"
	case DeadlineExceeded:
		return "DeadlineExceeded"
	case FailedPrecondition:
		return "FailedPrecondition"
	case Aborted:
		return "Aborted"
	case Canceled:
		return "Canceled"
	case Unavailable:
		return "Unavailable"
	}
	return "Category(" + strconv.Itoa(int(c)) + ")"
}

// Categories returns every category, Internal first, so a door can prove its mapping
// covers them all.
func Categories() []Category {
	out := make([]Category, numCategories)
	for i := range out {
		out[i] = Category(i)
	}
	return out
}
