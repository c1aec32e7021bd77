// Package api holds the skillbox.v1 wire API: the protobuf definition and the Go code
// generated from it (package skillboxv1). The generated files are committed, so a build
// needs no protoc. After editing the .proto, regenerate with `go generate ./api`, which
// needs protoc (3.21+) and, on PATH, protoc-gen-go v1.36.12 and protoc-gen-go-grpc v1.6.2
// (`go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12` and
// `go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2`).
package api

//go:generate protoc -I . --go_out=paths=source_relative:. --go-grpc_out=paths=source_relative:. skillbox/v1/skillbox.proto
