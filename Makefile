# The two commands a fresh machine needs are `make demo` and `make test` (see README.md).
GO ?= go

.PHONY: build test check demo bench skills startup-bench

# The whole test suite: format and vet checks, every package's tests, the race
# detector on the engine and the sandboxes, and the container sandbox's tests (hostile
# suite, contract suite, egress proxy) again under gVisor's runsc, which the Docker
# engine must list (scripts/docker-runsc.sh; without it they skip, or fail under
# SKILLBOX_REQUIRE_DOCKER=1).
# A package's tests may take longer than go test's default 10 minutes on a busy 2-core
# machine (the CLI's build and run the binary many times): TIMEOUT bounds each package.
TIMEOUT ?= 30m
# The patched jsonschema copy (third_party/, a module of its own, which ./... leaves out)
# is named by import path: go.mod's replace points there. It carries skillbox's test of
# the patch (the segmentio copy has none).
JSONSCHEMA = github.com/santhosh-tekuri/jsonschema/v6/...
test: check
	$(GO) test -count=1 -timeout $(TIMEOUT) ./...
	cd skills/sdk && $(GO) test -count=1 -timeout $(TIMEOUT) ./...
	$(GO) test -count=1 -timeout $(TIMEOUT) -race ./runtime/... ./isolation/...
	$(GO) test -count=1 -timeout $(TIMEOUT) -race $(JSONSCHEMA)
	SKILLBOX_CONTAINER_RUNTIME=runsc $(GO) test -count=1 -timeout $(TIMEOUT) ./isolation/container/...

check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@bins=$$(git ls-files -z | xargs -0 grep -l -m1 -P '\A\x7fELF' 2>/dev/null || true); \
	if [ -n "$$bins" ]; then echo "built binaries are tracked (nobody can review them):"; echo "$$bins"; exit 1; fi
	$(GO) vet ./... $(JSONSCHEMA)
	cd skills/sdk && $(GO) vet ./... && GOOS=wasip1 GOARCH=wasm $(GO) vet ./...

# The two binaries users install, side by side in bin/: skillbox, the command they type
# (the author's loop runs in it; it starts about as fast as wazero), and skillbox-full,
# the whole CLI, to which skillbox hands every other command.
build:
	$(GO) build -o bin/ ./cmd/skillbox ./cmd/skillbox-full

demo:
	./scripts/demo.sh

# The first-party wasm skills, built for the guest (skills/*/module.wasm).
skills:
	$(MAKE) -C skills

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./isolation/... ./runtime/...

# Start-up time of `skillbox run DIR` beside `wazero run` (needs hyperfine).
startup-bench:
	./scripts/startup-bench.sh
