package server

import (
	"time"

	"google.golang.org/grpc"
)

// GRPCOptionsWith is GRPCOptions with another idle time and stream bound, for tests.
func GRPCOptionsWith(idle time.Duration, streams uint32) []grpc.ServerOption {
	return grpcOptions(idle, streams)
}
