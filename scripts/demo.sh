#!/usr/bin/env bash
# skillbox, end to end, in a throwaway home: build, sign, trust, install, review,
# approve, serve, call from an agent (including a denied outbound request), a brokered
# token the skill uses but never sees, per-call oversight (one call allowed, one
# denied), the kill switch, and the audit chain; one skill travels through an OCI
# registry on loopback. Needs Go; uses Docker for the container skill when an
# engine answers. Leaves nothing behind: the temp home, the server, the local web
# origins, the loopback registry and the demo's image tag are removed on any exit.
#
#   make demo                 # or ./scripts/demo.sh
#   SKILLBOX_DEMO_DOCKER=0 make demo   # skip the container skill
#   SKILLBOX_DEMO_RUNTIME=runsc make demo   # run it under gVisor
set -euo pipefail

cd "$(dirname "$0")/.."
repo=$PWD
tmp=$(mktemp -d "${TMPDIR:-/tmp}/skillbox-demo.XXXXXX")
export SKILLBOX_HOME="$tmp/home"
unset SKILLBOX_SERVER SKILLBOX_TOKEN
bin="$tmp/bin"
pkgs="$tmp/pkgs"
server_pid= origin_pid= registry_pid= image_tag= caller_pid=
start=$SECONDS

cleanup() {
	local status=$?
	trap - EXIT INT TERM
	if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	if [[ -n $origin_pid ]] && kill -0 "$origin_pid" 2>/dev/null; then
		kill -TERM "$origin_pid" 2>/dev/null || true
		wait "$origin_pid" 2>/dev/null || true
	fi
	if [[ -n $caller_pid ]] && kill -0 "$caller_pid" 2>/dev/null; then
		kill -TERM "$caller_pid" 2>/dev/null || true
		wait "$caller_pid" 2>/dev/null || true
	fi
	if [[ -n $registry_pid ]] && kill -0 "$registry_pid" 2>/dev/null; then
		kill -TERM "$registry_pid" 2>/dev/null || true
		wait "$registry_pid" 2>/dev/null || true
	fi
	if [[ -n $image_tag ]]; then
		docker image rm "$image_tag" >/dev/null 2>&1 || true
	fi
	# The store seals installed packages read-only; make them removable.
	chmod -R u+w "$tmp" 2>/dev/null || true
	rm -rf "$tmp"
	if ((status != 0)); then
		echo "demo: FAILED (exit $status) after $((SECONDS - start))s; cleaned up" >&2
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -t 1 ]]; then bold=$'\033[1m' dim=$'\033[2m' off=$'\033[0m'; else bold= dim= off=; fi
step() { printf '\n%s==> %s%s %s(%ds)%s\n' "$bold" "$*" "$off" "$dim" $((SECONDS - start)) "$off"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
# shown prints a command line as one could paste it: arguments with spaces or shell
# characters in single quotes, $tmp abbreviated.
shown() {
	local out= a plain='^[-A-Za-z0-9_./:=@%+,$]+$'
	for a in "$@"; do
		a=${a//$tmp/\$tmp}
		if [[ $a =~ $plain ]]; then out+=" $a"; else out+=" '${a//\'/\'\\\'\'}'"; fi
	done
	printf '  %s$%s%s\n' "$dim" "$out" "$off"
}
# sb runs the CLI, showing the command line and its output, indented.
sb() {
	shown skillbox "$@"
	"$bin/skillbox" "$@" 2>&1 | sed -e "s|$tmp|\$tmp|g" -e 's/^/    /'
}
# agent runs examples/agent the same way; every call's outcome is also kept in
# $tmp/agent.log for the summary. Its exit status is 1 when a call failed, as skillbox's.
agent() {
	shown agent "$@"
	"$bin/agent" "$@" 2>&1 | tee -a "$tmp/agent.log" | sed -e "s|$tmp|\$tmp|g" -e 's/^/    /'
}

command -v go >/dev/null || die "Go is needed (https://go.dev/dl/)"
use_docker=0
if [[ ${SKILLBOX_DEMO_DOCKER:-1} != 0 ]] && command -v docker >/dev/null && docker version >/dev/null 2>&1; then
	use_docker=1
fi

step "building the skillbox CLI, the example agent and the demo's local web origins into \$tmp/bin"
note "the first build on a fresh machine downloads and compiles the dependencies: a few minutes"
mkdir -p "$bin" "$pkgs" "$SKILLBOX_HOME/keys" "$tmp/build"
# build OUT PKG [go build flags...] shows each build as it starts and how long it took.
build() {
	local out=$1 pkg=$2 t0=$SECONDS
	shift 2
	printf '    %-26s' "$pkg"
	go build "$@" -o "$out" "$pkg"
	printf 'built in %ds\n' $((SECONDS - t0))
}
build "$bin/skillbox" ./cmd/skillbox
build "$bin/skillbox-full" ./cmd/skillbox-full
build "$bin/agent" ./examples/agent
build "$bin/mcp-agent" ./examples/mcp-agent
build "$bin/demo-origin" ./scripts/demo-origin
build "$bin/oci-registry" ./examples/oci-registry

step "building the first-party skills decimal, jsonq, fetch for WASI (GOOS=wasip1 GOARCH=wasm)"
for s in decimal jsonq fetch; do
	mkdir -p "$pkgs/$s"
	GOOS=wasip1 GOARCH=wasm build "$pkgs/$s/module.wasm" "./skills/$s" -trimpath
	cp "skills/$s/skill.yaml" "$pkgs/$s/skill.yaml"
done
mkdir -p "$pkgs/upper"
cp examples/wat-skill/upper/skill.yaml examples/wat-skill/upper/module.wasm "$pkgs/upper/"
note "upper: $(wc -c <"$pkgs/upper/module.wasm") bytes, hand-written WebAssembly text (examples/wat-skill), no SDK"

step "starting two local web origins on 127.0.0.1 (one will be granted to fetch, one not)"
# The brokered token: only the origin (which checks it) and the server (which adds it
# at egress) get it, in their environment; nothing the demo writes may ever hold it.
demo_token="demo-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
DEMO_TOKEN=$demo_token "$bin/demo-origin" --addr-file "$tmp/origins" --log "$tmp/origin.log" &
origin_pid=$!
for _ in $(seq 50); do [[ -s $tmp/origins ]] && break; sleep 0.1; done
[[ -s $tmp/origins ]] || die "the demo origins did not start"
read -r granted_kv internal_kv <"$tmp/origins"
granted=${granted_kv#granted=} internal=${internal_kv#internal=}
note "granted origin:  $granted"
note "internal origin: $internal (asked for by the manifest, left out of the grant)"
note "the granted origin's /api/ answers only 'Authorization: Bearer <DEMO_TOKEN>'; /echo-headers echoes the request's headers"

step "writing the demo's fetch manifest: it asks for both local origins and a brokered DEMO_TOKEN for the granted one"
awk -v a="$granted" -v b="$internal" '
	/^capabilities:/ {
		print "capabilities:\n  network:\n    - " a "\n    - " b
		print "  secrets:\n    - name: DEMO_TOKEN\n      origins: [" a "]\n      format: \"Bearer {}\""
		skip = 1; next
	}
	skip && /^[^ ]/ { skip = 0 }
	!skip' "skills/fetch/skill.yaml" >"$pkgs/fetch/skill.yaml"
grep -q -- "- $internal\$" "$pkgs/fetch/skill.yaml" || die "could not rewrite fetch's network list"
sed -n '/^capabilities:/,/^[a-z]/p' "$pkgs/fetch/skill.yaml" | sed -e '$d' -e 's/^/    /'

step "packing: writing each module's sha256 into its skill.yaml and validating it"
for s in decimal jsonq fetch upper; do sb pack "$pkgs/$s"; done

step "making a signing key and trusting it in \$SKILLBOX_HOME/trust.yaml"
sb keygen --out "$tmp/demo-release"
cp "$tmp/demo-release.pub" "$SKILLBOX_HOME/keys/demo-release.pub"
cat >"$SKILLBOX_HOME/trust.yaml" <<'EOF'
signers:
  - name: demo-release
    key: keys/demo-release.pub
EOF
note "trust.yaml trusts one signer: demo-release"

step "signing each package (a Sigstore bundle over skill.yaml and module.wasm)"
for s in decimal jsonq fetch upper; do sb sign "$pkgs/$s" --key "$tmp/demo-release.key"; done

step "installing: each bundle is verified against trust.yaml before it enters the store"
for s in decimal jsonq fetch; do sb install "$pkgs/$s" --by demo; done

step "upper through an OCI registry: push it to a registry on loopback (in memory), install it by digest"
"$bin/oci-registry" --addr-file "$tmp/registry.addr" 2>"$tmp/registry.log" &
registry_pid=$!
for _ in $(seq 50); do [[ -s $tmp/registry.addr ]] && break; sleep 0.1; done
[[ -s $tmp/registry.addr ]] || die "the registry did not start: $(tail -n 3 "$tmp/registry.log")"
registry=$(<"$tmp/registry.addr")
shown skillbox push "$pkgs/upper" "$registry/skills/upper:0.1.0" --plain-http-unsafe
push_out=$("$bin/skillbox" push "$pkgs/upper" "$registry/skills/upper:0.1.0" --plain-http-unsafe 2>&1) || die "push failed: $push_out"
printf '%s\n' "$push_out" | sed -e "s|$tmp|\$tmp|g" -e 's/^/    /'
upper_digest=$(printf '%s\n' "$push_out" | grep -m1 '^sha256:') || die "push printed no digest"
sb install "oci://$registry/skills/upper@$upper_digest" --plain-http-unsafe --by demo
note "pulled within the archive's size limits, each layer checked against its digest, the bundle found"
note "among the artifact's referrers and verified against trust.yaml; plain HTTP only because it is loopback"
kill -TERM "$registry_pid" && wait "$registry_pid" || die "the registry exited badly: $(tail -n 3 "$tmp/registry.log")"
registry_pid=

step "reviewing fetch: what it asks for, in plain words"
sb review "$pkgs/fetch"

step "approving decimal, jsonq and upper as asked, and fetch with a grant of ONE of its two origins"
cat >"$tmp/fetch-grant.yaml" <<EOF
network: ["$granted"]
secrets: {DEMO_TOKEN: "env:DEMO_TOKEN"}
limits: {timeout: 10s, requests: 3}
EOF
note "fetch-grant.yaml: network [$granted], DEMO_TOKEN's value from the server's env, timeout 10s, 3 requests a call"
sb approve decimal --by demo-operator --yes
sb approve jsonq --by demo-operator --yes
sb approve upper --by demo-operator --yes
sb approve fetch --grant "$tmp/fetch-grant.yaml" --by demo-operator --yes

if ((use_docker)); then
	step "building the container skill textstat: a static binary in a FROM-scratch image, docker save -> image.tar"
	mkdir -p "$pkgs/textstat" "$tmp/build/textstat"
	CGO_ENABLED=0 GOOS=linux build "$tmp/build/textstat/textstat" ./skills/textstat -trimpath -ldflags='-s -w'
	cp skills/textstat/Dockerfile "$tmp/build/textstat/"
	image_tag="skillbox-demo-textstat:$(basename "$tmp" | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9.-')"
	docker build -q --label "dev.skillbox.demo-run=$(basename "$tmp")" -t "$image_tag" "$tmp/build/textstat" >/dev/null 2>"$tmp/docker-build.log" ||
		die "docker build failed: $(tail -n 3 "$tmp/docker-build.log")"
	docker save "$image_tag" -o "$pkgs/textstat/image.tar"
	cp skills/textstat/skill.yaml "$pkgs/textstat/skill.yaml"
	note "textstat: image $(docker image inspect -f '{{.Id}}' "$image_tag" | cut -c1-19)…, image.tar $(($(wc -c <"$pkgs/textstat/image.tar") / 1024)) KiB"
	sb pack "$pkgs/textstat"
	sb sign "$pkgs/textstat" --key "$tmp/demo-release.key"
	sb install "$pkgs/textstat" --by demo
	sb approve textstat --by demo-operator --yes
else
	step "skipping the container skill textstat: no Docker engine answers (or SKILLBOX_DEMO_DOCKER=0)"
fi

step "starting the server: skillbox serve on unix://\$SKILLBOX_HOME/skillbox.sock (mode 0600), MCP on loopback with a token"
agent_token="agent-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
printf 'agent %s\n' "$agent_token" >"$tmp/tokens"
chmod 600 "$tmp/tokens"
serve_args=(--mcp 127.0.0.1:0 --token-file "$tmp/tokens")
((use_docker)) || serve_args+=(--no-container)
# SKILLBOX_DEMO_RUNTIME=runsc make demo: the container skill under gVisor (docs/gvisor.md).
if ((use_docker)) && [[ -n ${SKILLBOX_DEMO_RUNTIME:-} ]]; then
	serve_args+=(--container-runtime "$SKILLBOX_DEMO_RUNTIME")
fi
shown env DEMO_TOKEN=… skillbox serve "${serve_args[@]}"
DEMO_TOKEN=$demo_token "$bin/skillbox" serve "${serve_args[@]}" >"$tmp/serve.log" 2>&1 &
server_pid=$!
for i in $(seq 150); do
	"$bin/skillbox" calls >/dev/null 2>&1 && break # calls needs the server (skills answers offline)
	kill -0 "$server_pid" 2>/dev/null || die "the server exited: $(tail -n 3 "$tmp/serve.log")"
	((i < 150)) || die "the server did not answer within 30s: $(tail -n 3 "$tmp/serve.log")"
	sleep 0.2
done
mcp_addr=$(sed -n 's|^skillbox: serving on http://\([0-9.]*:[0-9]*\)/mcp$|\1|p' "$tmp/serve.log" | head -n 1)
[[ -n $mcp_addr ]] || die "the server did not say where MCP listens: $(cat "$tmp/serve.log")"
note "MCP (Streamable HTTP) on http://$mcp_addr/mcp for callers with a token in \$tmp/tokens (token:agent)"
sb skills

step "first calls with skillbox invoke: install compiled each module into \$SKILLBOX_HOME/cache, so the server only loads it"
warm() {
	local t0=$SECONDS
	printf '    %-9s invoking…' "$1"
	local out
	if out=$("$bin/skillbox" invoke "$1" --input "$2" 2>&1); then
		printf ' done in %ds\n' $((SECONDS - t0))
	else
		printf ' FAILED after %ds\n' $((SECONDS - t0))
		printf '%s\n' "$out" | sed 's/^/      /'
		return 1
	fi
}
warm decimal '{"expression":"1 + 1"}'
warm jsonq '{"data":[1],"query":".[0]"}'
warm fetch "{\"url\":\"$granted/warm-up\"}"

step "the agent lists the skills and calls decimal, jsonq, upper and fetch of the granted origin"
agent --call 'decimal={"expression":"19.99 * 3 - 5.00 / 2"}' \
	--call 'decimal={"op":"div","operands":["100.00","3"],"scale":2,"rounding":"half-up"}' \
	--call 'jsonq={"data":{"items":[{"name":"widget","price":19.99},{"name":"gadget","price":5.00}]},"query":".items[] | select(.price > 10) | .name"}' \
	--call 'upper={"text":"hand-written wasm, no SDK"}' \
	--call "fetch={\"url\":\"$granted/prices\",\"max_chars\":200}"

step "a brokered token: fetch calls an API that checks DEMO_TOKEN, and one that echoes it back"
note "the token is added by the server at egress, only to $granted; the skill's env, memory and files never hold it"
mkdir -p "$tmp/calls"
brokered() { # brokered NAME URL: invoke fetch on URL, keep the result in $tmp/calls/NAME.out
	shown skillbox invoke fetch --input "{\"url\":\"$2\",\"max_chars\":300}"
	"$bin/skillbox" invoke fetch --input "{\"url\":\"$2\",\"max_chars\":300}" >"$tmp/calls/$1.out" 2>&1 ||
		die "fetch $2 failed: $(cat "$tmp/calls/$1.out")"
	sed -e "s|$tmp|\$tmp|g" -e 's/^/    /' "$tmp/calls/$1.out"
}
brokered api "$granted/api/balance"
grep -q '"status": 200' "$tmp/calls/api.out" && grep -q 'accepted' "$tmp/calls/api.out" ||
	die "the API did not accept the brokered token"
brokered echo "$granted/echo-headers"
grep -qF 'Bearer [skillbox:secret DEMO_TOKEN]' "$tmp/calls/echo.out" ||
	die "the echoed header did not reach the skill as the placeholder"
note "the API got the right token (its log: $(grep -c '/api/balance (right token)' "$tmp/origin.log") request with it);"
note "the echo came back to the skill as [skillbox:secret DEMO_TOKEN], so its output cannot carry the value"

step "the agent asks fetch for the origin the grant left out, and sends a bad input: both refused"
set +e
agent --list=false --call "fetch={\"url\":\"$internal/admin\"}" --call 'decimal={"expression":42}' >"$tmp/refused.out"
refused_status=$?
set -e
cat "$tmp/refused.out"
((refused_status == 1)) || die "expected the agent to report failed calls (exit 1), got $refused_status"
grep -q " internal " "$tmp/origin.log" && die "the internal origin received a request"
note "the internal origin's log is empty: the host refused the request before any byte left"

step "the kill switch: disable fetch, watch a call be refused, enable it again"
sb disable fetch --reason "demo: kill switch"
set +e
agent --list=false --call "fetch={\"url\":\"$granted/\"}" >"$tmp/disabled.out"
disabled_status=$?
set -e
cat "$tmp/disabled.out"
((disabled_status == 1)) && grep -q "DISABLED" "$tmp/disabled.out" || die "a call of a disabled skill was not refused as DISABLED"
sb enable fetch
agent --list=false --call "fetch={\"url\":\"$granted/again\",\"max_chars\":40}"

step "an MCP agent: the same skills as MCP tools, through skillbox mcp (what a desktop agent starts)"
shown mcp-agent --skillbox "$bin/skillbox" --call 'decimal={"expression":"2 * 21"}' --call 'decimal={"expression":42}'
set +e
"$bin/mcp-agent" --skillbox "$bin/skillbox" --call 'decimal={"expression":"2 * 21"}' --call 'decimal={"expression":42}' >"$tmp/mcp.out" 2>&1
mcp_status=$?
set -e
sed -e "s|$tmp|\$tmp|g" -e 's/^/    /' "$tmp/mcp.out"
((mcp_status == 1)) && grep -q '"reason":"INVALID_INPUT"' "$tmp/mcp.out" && grep -q 'result: ' "$tmp/mcp.out" ||
	die "expected one MCP call to succeed and one to be refused as INVALID_INPUT (exit 1), got $mcp_status"
note "the refusal is a tool result the model can read, with the same reason as over gRPC"

step "per-call oversight: upper now waits for a person's decision on every call (a new approval)"
cat >"$tmp/upper-grant.yaml" <<EOF
oversight:
  approvers: ["unix:uid=$(id -u)"]
  wait: 2m
  reason: "demo: every transfer is read by a person"
EOF
note "upper-grant.yaml: oversight by unix:uid=$(id -u) (this operator, over the socket), at most 2m a call"
sb approve upper --grant "$tmp/upper-grant.yaml" --by demo-operator --yes
# overseen NAME TEXT: the MCP agent (token:agent, over HTTP) calls upper in the
# background; pending_id is the request the server parked for it.
overseen() {
	shown SKILLBOX_TOKEN=… mcp-agent --url "http://$mcp_addr/mcp" --list=false --call "upper={\"text\":\"$2\"}" '&'
	SKILLBOX_TOKEN=$agent_token "$bin/mcp-agent" --url "http://$mcp_addr/mcp" --list=false \
		--call "upper={\"text\":\"$2\"}" >"$tmp/calls/$1.out" 2>&1 &
	caller_pid=$!
	local id=
	for _ in $(seq 100); do
		id=$("$bin/skillbox" pending --json 2>/dev/null | sed -n 's/^ *"id": "\([^"]*\)",*$/\1/p' | head -n 1)
		[[ -n $id ]] && break
		kill -0 "$caller_pid" 2>/dev/null || die "the MCP agent ended before its call was parked: $(cat "$tmp/calls/$1.out")"
		sleep 0.1
	done
	[[ -n $id ]] || die "no pending call appeared within 10s"
	pending_id=$id
}
# outcome NAME: wait for the background caller and show what it saw.
outcome() {
	set +e
	wait "$caller_pid"
	caller_status=$?
	set -e
	caller_pid=
	sed -e "s|$tmp|\$tmp|g" -e 's/^/    /' "$tmp/calls/$1.out"
}
overseen allowed "wire 100 EUR to ACME"
sb pending
sb allow "$pending_id" --reason "invoice 42 checked"
outcome allowed
((caller_status == 0)) && grep -q 'WIRE 100 EUR TO ACME' "$tmp/calls/allowed.out" || die "the allowed call did not return its result"
overseen denied "wire 5000 EUR to Mallory"
sb deny "$pending_id" --reason "unknown payee"
outcome denied
((caller_status == 1)) && grep -q '"reason":"APPROVAL_DENIED"' "$tmp/calls/denied.out" && grep -q 'unknown payee' "$tmp/calls/denied.out" ||
	die "the denied call did not end APPROVAL_DENIED with the reason"
note "the agent waited on both; one ran after the allow, the other never ran and says why"

if ((use_docker)); then
	step "calling the container skill textstat (a fresh hardened container, no network)"
	agent --list=false --call 'textstat={"text":"The quick brown fox jumps over the lazy dog. The dog sleeps.","top":3,"skip_stopwords":true}'
fi

step "stopping the server (SIGTERM drains calls in flight)"
kill -TERM "$server_pid"
wait "$server_pid" || die "the server exited with status $?: $(tail -n 3 "$tmp/serve.log")"
server_pid=
sed -e "s|$tmp|\$tmp|g" -e 's/^/    /' "$tmp/serve.log"

step "checking the audit log's hash chain, and finding the denied request in it"
sb audit verify
"$bin/skillbox" audit tail >"$tmp/audit.jsonl"
grep '"event":"egress.denied"' "$tmp/audit.jsonl" | sed -e 's/,"prev":"[0-9a-f]*","hash":"[0-9a-f]*"//' -e 's/^/    /'

count() { grep -c -- "$1" "$2" || true; }
records=$(($(wc -l <"$tmp/audit.jsonl")))
ran=$(count '"event":"invoke.end"' "$tmp/audit.jsonl")
ran_ok=$(grep '"event":"invoke.end"' "$tmp/audit.jsonl" | grep -c '"outcome":"ok"' || true)
denied=$(count '"event":"egress.denied"' "$tmp/audit.jsonl")
agent_calls=$(count '^→ ' "$tmp/agent.log")
agent_ok=$(count '^  ✓ ' "$tmp/agent.log")
reached=$(count ' granted ' "$tmp/origin.log")
leaked=$(count ' internal ' "$tmp/origin.log")
((denied == 1)) || die "expected exactly one egress.denied record in the audit log, found $denied"
carried=$(count '"event":"egress.secret"' "$tmp/audit.jsonl")
with_token=$(count '(right token)' "$tmp/origin.log")
approvals_allowed=$(count '"event":"approval.allowed"' "$tmp/audit.jsonl")
approvals_denied=$(count '"event":"approval.denied"' "$tmp/audit.jsonl")
((approvals_allowed == 1 && approvals_denied == 1)) ||
	die "expected one approval.allowed and one approval.denied record, found $approvals_allowed and $approvals_denied"

step "searching everything the demo wrote for DEMO_TOKEN's value: \$SKILLBOX_HOME, the server's output, every call's result"
searched=$(find "$tmp" -type f | wc -l)
set +e
leaks=$(grep -rlF -- "$demo_token" "$tmp")
search_status=$?
set -e
((search_status != 0)) || die "the brokered token's value is in: ${leaks//$tmp/\$tmp}"
((search_status == 1)) || die "the search for the token's value failed (grep exit $search_status)"
grep -rlF -- "[skillbox:secret DEMO_TOKEN]" "$tmp/calls" >/dev/null || die "the placeholder is missing from the call results"
note "$searched files (audit log, store, approvals, caches, serve.log, agent logs, call results): the value is in none"

step "summary"
note "calls:             $agent_calls by the agent ($agent_ok ok, $((agent_calls - agent_ok)) refused), 3 first calls by skillbox invoke"
note "ran in a sandbox:  $ran ($ran_ok ok); invalid input and the disabled skill were refused before running"
note "outbound requests: $reached reached the granted origin; $denied denied by the grant ($leaked reached the other origin)"
note "brokered token:    added to $carried requests ($with_token arrived with the right token); 0 copies in $searched files"
note "oversight:         1 call allowed and run, 1 denied (APPROVAL_DENIED with the reason); both callers waited"
note "audit log:         $records records, hash chain OK"
note "registry:          upper installed from oci://…/skills/upper@${upper_digest:0:19}…, by digest"
note "container skill:   $( ((use_docker)) && echo "textstat ran in a FROM-scratch container" || echo "skipped (no Docker engine)")"
note "wall time:         $((SECONDS - start))s; \$tmp is removed now and nothing is left running"
