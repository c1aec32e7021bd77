#!/usr/bin/env bash
# Start-up time of the CLI (issue 18), side by side with wazero's CLI in one hyperfine
# run: `skillbox run DIR` of a tiny wasm module against `wazero run` of the same
# module (and `skillbox-full run DIR`, the whole CLI, what every command cost before),
# then `skillbox version` and `skillbox --help` (which skillbox hands to
# skillbox-full) against `wazero version`, then peak RSS and page faults of each
# (/usr/bin/time -v). The module is runtime/engine/testdata/echo.wasm (copies stdin
# to stdout). Needs hyperfine; builds skillbox, skillbox-full and wazero (the
# version go.mod pins) into a temporary directory.
#
#   scripts/startup-bench.sh [hyperfine flags...]     e.g. --runs 300
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || { echo "startup-bench: hyperfine is needed (apt-get install hyperfine)" >&2; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/" ./cmd/skillbox ./cmd/skillbox-full github.com/tetratelabs/wazero/cmd/wazero

export SKILLBOX_HOME="$tmp/home"
skill="$tmp/echo"
mkdir -p "$skill"
cp runtime/engine/testdata/echo.wasm "$skill/module.wasm"
cat >"$skill/skill.yaml" <<'YAML'
apiVersion: skillbox/v1
name: echo
version: 1.0.0
description: Copies its input to its output (the start-up benchmark's tiny module).
sandbox:
  wasm:
    module: module.wasm
    sha256: ""
input: {type: object}
output: {type: object}
YAML
"$tmp/skillbox" pack "$skill" >/dev/null
# The first run compiles the module into the home's cache, as an author's first run does.
"$tmp/skillbox" run "$skill" --input '{"a":1}' >/dev/null 2>&1
echo '{"a":1}' >"$tmp/input.json"

cd "$tmp"
hyperfine -N --warmup 20 "$@" \
	-n 'skillbox run DIR' "./skillbox run $skill --input '{\"a\":1}' --json" \
	-n 'wazero run' "./wazero run $tmp/echo/module.wasm" \
	-n 'skillbox-full run DIR' "./skillbox-full run $skill --input '{\"a\":1}' --json"
hyperfine -N --warmup 20 "$@" \
	-n 'skillbox version' './skillbox version' \
	-n 'skillbox --help' './skillbox --help' \
	-n 'skillbox-full version' './skillbox-full version' \
	-n 'wazero version' './wazero version'

echo
echo "peak RSS and page faults (/usr/bin/time -v, one run each):"
measure() {
	local name=$1
	shift
	/usr/bin/time -v "$@" <"$tmp/input.json" >/dev/null 2>"$tmp/time.txt" || true
	printf '  %-22s max RSS %6s KiB, minor page faults %6s\n' "$name" \
		"$(awk -F': ' '/Maximum resident/ {print $2}' "$tmp/time.txt")" \
		"$(awk -F': ' '/Minor .*page faults/ {print $2}' "$tmp/time.txt")"
}
measure 'skillbox run DIR' ./skillbox run "$skill" --input '{"a":1}' --json
measure 'wazero run' ./wazero run "$tmp/echo/module.wasm"
measure 'skillbox version' ./skillbox version
measure 'skillbox-full version' ./skillbox-full version
measure 'wazero version' ./wazero version
