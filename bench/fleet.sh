#!/bin/sh
# Fleet gossip benchmark: N Vigil agents against N bare `serf agent`
# processes on this machine (see bench/README.md for the figures).
# Usage: bench/fleet.sh [SIZES]   (default "50,100")
set -eu
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
go build -tags grpcnotrace -o "$out/vigil" ./cmd/vigil
GOBIN="$out" go install github.com/hashicorp/serf/cmd/serf@v0.11.0
go build -o "$out/fleetbench" ./bench/fleet
"$out/fleetbench" -vigil "$out/vigil" -serf "$out/serf" -n "${1:-50,100}" -trials "${TRIALS:-10}"
