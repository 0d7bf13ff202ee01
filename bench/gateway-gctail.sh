#!/bin/sh
# gateway-gctail.sh: do vigil's slowest gateway requests coincide with
# garbage collection in the agent or its plugin? Runs the agent (and its
# openai plugin) with GODEBUG=gctrace=1 in front of bench/gateway/stub,
# drives it with vegeta at RATE req/s for DURATION s, and matches each
# GC cycle to the requests it overlapped (bench/gateway/gctail.py). A
# correlation, not a cause: bench/README.md, "Seventh pass", has the A/B
# that tests it.
#
#   RATE=500 DURATION=15 sh bench/gateway-gctail.sh
set -eu

RATE=${RATE:-500}
DURATION=${DURATION:-15}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/gateway/lib.sh
. "$root/bench/gateway/lib.sh"
gw_init
echo "building..." >&2
gw_build "$root" "$tmp" '"GODEBUG=gctrace=1"'
gw_start_upstreams

# The agent logs at info so that the plugin's gctrace lines (its stderr)
# come through; every stderr line is stamped with the time it was read.
gw_config "$tmp" info
(GODEBUG=gctrace=1 "$tmp/vigil" agent -config "$tmp/vigil.yaml" 2>&1 >"$tmp/vigil.out" |
	python3 -u -c 'import sys, time
for l in sys.stdin: sys.stdout.write("%.6f %s" % (time.time(), l)); sys.stdout.flush()' >"$tmp/gc.log") &
pids="$pids $!"
i=0
addr=""
while [ -z "$addr" ]; do
	addr=$(sed -n 's|.*API: http://\(127\.0\.0\.1:[0-9]*\).*|\1|p' "$tmp/vigil.out" | head -n1)
	i=$((i + 1))
	[ $i -gt 300 ] && { echo "the agent did not start" >&2; exit 1; }
	[ -z "$addr" ] && sleep 0.05
done
# $! above is the pipeline's subshell; the agent is found by its command line.
agent_pid=$(pgrep -f "$tmp/vigil agent")
pids="$agent_pid $pids"

printf '{"model":"bench-model","messages":[{"role":"user","content":"hello benchmark, how are you today"}],"max_tokens":16}' >"$tmp/body.json"
printf 'POST http://%s/openai/v1/chat/completions\nContent-Type: application/json\n@%s\n' "$addr" "$tmp/body.json" >"$tmp/targets"
"$VEGETA" attack -rate=100/s -duration=2s -targets="$tmp/targets" >/dev/null
echo "run: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), rate $RATE/s for ${DURATION}s" >&2
"$VEGETA" attack -rate="$RATE/s" -duration="${DURATION}s" -targets="$tmp/targets" | "$VEGETA" encode --to csv >"$tmp/vigil.csv"
sleep 0.5 # the last gctrace lines
python3 "$root/bench/gateway/gctail.py" "$tmp"
