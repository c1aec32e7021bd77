#!/usr/bin/env bash
# Registers gVisor's runsc as a runtime of the local Docker engine, so that
# `skillbox serve --container-runtime runsc` and the container tests under
# SKILLBOX_CONTAINER_RUNTIME=runsc can use it. Idempotent:
#   1. installs Debian's runsc package when /usr/bin/runsc is missing (apt-get);
#   2. merges {"runtimes":{"runsc":{...}}} into /etc/docker/daemon.json, keeping every
#      other key (the file is rewritten only when the entry differs);
#   3. sends SIGHUP to dockerd (the runtimes map is a reloadable setting: no restart,
#      running containers are untouched) and waits until `docker info` lists the entry.
# --platform=ptrace: the machines this runs on have no KVM; ptrace works everywhere.
# --network=host: this runsc (2022-12) refuses its own network stack on Linux >= 6.x,
# where a sysctl it uses to detect the host's root namespace became per-namespace; with
# host, the sandbox uses the network namespace Docker made for the container (none, or
# the skill's internal network) through the host kernel. See docs/gvisor.md.
# Usage: scripts/docker-runsc.sh   (as root, beside a running dockerd)
set -euo pipefail

command -v jq >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q jq >/dev/null

name=runsc
bin=/usr/bin/runsc
conf=${DOCKER_DAEMON_JSON:-/etc/docker/daemon.json}
want=$(jq -cn --arg p "$bin" '{path: $p, runtimeArgs: ["--platform=ptrace", "--network=host"]}')

# has_runtime: the engine lists the runtime with exactly the wanted path and arguments.
has_runtime() {
  [[ $(docker info --format '{{json .Runtimes}}' 2>/dev/null | jq -c --arg n "$name" '.[$n] // empty') == "$want" ]]
}

if [[ ! -x $bin ]]; then
  echo "docker-runsc: installing runsc (Debian package)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q runsc >/dev/null ||
    { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q runsc >/dev/null; }
fi
"$bin" --version >/dev/null

mkdir -p "$(dirname "$conf")"
[[ -s $conf ]] || echo '{}' >"$conf"
if [[ $(jq -c --arg n "$name" '.runtimes[$n] // empty' "$conf") != "$want" ]]; then
  tmp=$(mktemp "$conf.XXXXXX")
  jq --arg n "$name" --argjson r "$want" '.runtimes[$n] = $r' "$conf" >"$tmp"
  chmod 0644 "$tmp"
  mv "$tmp" "$conf"
  echo "docker-runsc: set the $name runtime in $conf" >&2
fi

if ! has_runtime; then
  # dockerd re-reads daemon.json on SIGHUP: the engine's own pid file, else the
  # process named exactly dockerd.
  pid=$(cat /var/run/docker.pid 2>/dev/null || pgrep -xo dockerd || true)
  [[ -n $pid ]] || { echo "docker-runsc: no dockerd process to reload" >&2; exit 1; }
  kill -HUP "$pid"
  for _ in $(seq 1 50); do
    has_runtime && break
    sleep 0.2
  done
fi
has_runtime || { echo "docker-runsc: docker info does not list $name as $want after SIGHUP; see the daemon's log" >&2; exit 1; }
echo "docker-runsc: the Docker engine has the $name runtime ($("$bin" --version | head -1))" >&2
