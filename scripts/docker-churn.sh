#!/usr/bin/env bash
# Other Docker work on the same engine, as a shared CI machine has: while it runs, it
# builds and removes images, creates and removes containers and networks, all under its
# own names and label, and never touches anything else. .ci/run starts it beside
# `make test` so the container tests prove they do not need an idle engine.
# Usage: scripts/docker-churn.sh STOPFILE   (it stops when STOPFILE exists)
set -uo pipefail
stop=${1:?usage: docker-churn.sh STOPFILE}
id="churn-$$-$RANDOM"
label="skillbox.churn=$id"
ctx=$(mktemp -d)
trap 'docker ps -aq --filter "label=$label" | xargs -r docker rm -f >/dev/null 2>&1
      docker network ls -q --filter "label=$label" | xargs -r docker network rm >/dev/null 2>&1
      docker images -q --filter "label=$label" | sort -u | xargs -r docker rmi -f >/dev/null 2>&1
      rm -rf "$ctx"' EXIT
printf 'FROM scratch\nLABEL %s\nCOPY f /f\n' "$label" >"$ctx/Dockerfile"
n=0
while [[ ! -e $stop ]]; do
  n=$((n + 1))
  echo "$n" >"$ctx/f"
  docker build -q -t "$id:$n" "$ctx" >/dev/null 2>&1
  docker network create --label "$label" "$id-net-$n" >/dev/null 2>&1
  docker create --label "$label" --name "$id-c-$n" --network "$id-net-$n" "$id:$n" /f >/dev/null 2>&1
  sleep 0.5
  docker rm -f "$id-c-$n" >/dev/null 2>&1
  docker network rm "$id-net-$n" >/dev/null 2>&1
  docker rmi -f "$id:$n" >/dev/null 2>&1
done
echo "docker-churn: $n rounds of images, containers and networks made and removed beside the tests" >&2
