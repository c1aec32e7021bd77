// The guest SDK is its own module so that a skill author can require it without the
// rest of skillbox: `go get github.com/skillbox-dev/skillbox/skills/sdk@v0.1.0`.
// It imports the standard library only. Releases are tagged skills/sdk/vX.Y.Z.
module github.com/skillbox-dev/skillbox/skills/sdk

go 1.24
