package engine

import "context"

// doorKey labels a context with the door an operator's action came through.
type doorKey struct{}

// WithDoor labels ctx with the door ("grpc", "console") an operator's action (Disable,
// Enable) comes through; the action's audit record carries it as details.door, as a
// call's records carry Request.Door. Unlabelled actions (the CLI on the skill home)
// record no door.
func WithDoor(ctx context.Context, door string) context.Context {
	return context.WithValue(ctx, doorKey{}, door)
}

// doorOf is the door ctx was labelled with, as recorded (doorName), or "".
func doorOf(ctx context.Context) string {
	d, _ := ctx.Value(doorKey{}).(string)
	return doorName(d)
}

// withDoor adds ctx's door to an audit record's details (nil stays nil without one).
func withDoor(ctx context.Context, details map[string]any) map[string]any {
	if d := doorOf(ctx); d != "" {
		if details == nil {
			details = map[string]any{}
		}
		details["door"] = d
	}
	return details
}
