// Package skillboxv1 is the generated Go code for the skillbox.v1 gRPC API (services
// Skills and Admin, see skillbox.proto for the reference). Failed calls carry an
// ErrorDetail in their status details with a machine-readable reason.
package skillboxv1
