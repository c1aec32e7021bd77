package client_test

import (
	"fmt"

	"google.golang.org/grpc/codes"

	"github.com/skillbox-dev/skillbox/runtime/client"
)

// A status code as the gRPC spec and docs/api.md write it, not as Go prints it.
func ExampleCodeName() {
	fmt.Println(client.CodeName(codes.FailedPrecondition), client.CodeName(codes.Canceled), codes.FailedPrecondition)
	// Output: FAILED_PRECONDITION CANCELLED FailedPrecondition
}
