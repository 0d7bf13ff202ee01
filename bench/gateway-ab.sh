#!/bin/sh
# gateway-ab.sh: before/after for the LLM gateway on a busy machine. Two
# agents (each with its own openai plugin) run side by side, one built from
# BASE (a git revision) and one from the working tree, in front of the same
# upstream stub, next to the minimal proxy; vegeta drives proxy, base and
# head in turn, ROUNDS times, so that the machine's changing load hits all
# three alike. Reported per round and as the median of the rounds: p50/p99
# added to the direct path's, CPU microseconds per request (proxy process;
# agent + plugin) and the ratio to the proxy; then peak RSS.
#
# BASE_ENV and HEAD_ENV add environment to either agent (e.g.
# VIGIL_GATEWAY_OBSERVATIONS_ENABLED=false), to compare settings of one
# build: BASE=HEAD HEAD_ENV=... sh bench/gateway-ab.sh. BASE_PLUGIN_ENV and
# HEAD_PLUGIN_ENV do the same for either side's plugin, as JSON strings
# (HEAD_PLUGIN_ENV='"GOMAXPROCS=2"'). Both sides are built with GW_TAGS
# (grpcnotrace, as the Makefile builds); BASE_TAGS= builds the base without,
# as revisions before e0cf2ac were built.
#
#   BASE=9a5c0dd sh bench/gateway-ab.sh
#   BASE=9a5c0dd RATE=500 DURATION=10 ROUNDS=3 sh bench/gateway-ab.sh
set -eu

BASE=${BASE:?set BASE to the git revision to compare with}
RATE=${RATE:-200}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=bench/gateway/lib.sh
. "$root/bench/gateway/lib.sh"
gw_init

echo "building $BASE and the working tree..." >&2
mkdir -p "$tmp/src-base"
(cd "$root" && git archive "$BASE" | tar -x -C "$tmp/src-base")
head_tags=$GW_TAGS
GW_TAGS=${BASE_TAGS-$GW_TAGS}
gw_build "$tmp/src-base" "$tmp/base" "${BASE_PLUGIN_ENV:-}"
GW_TAGS=$head_tags
gw_build "$root" "$tmp/head" "${HEAD_PLUGIN_ENV:-}"
gw_start_upstreams
gw_start_agent "$tmp/base" "${BASE_ENV:-}"
gw_start_agent "$tmp/head" "${HEAD_ENV:-}"

body='{"model":"bench-model","messages":[{"role":"user","content":"hello benchmark, how are you today"}],"max_tokens":16}'
printf '%s' "$body" >"$tmp/body.json"
url_direct="http://$stub/v1/chat/completions"
url_proxy="http://$proxy/v1/chat/completions"
url_base="http://$(cat "$tmp/base/addr")/openai/v1/chat/completions"
url_head="http://$(cat "$tmp/head/addr")/openai/v1/chat/completions"
attack() { # attack URL RATE DURATION OUT
	printf 'POST %s\nContent-Type: application/json\n@%s\n' "$1" "$tmp/body.json" >"$tmp/targets"
	"$VEGETA" attack -rate="$2/s" -duration="$3" -targets="$tmp/targets" | "$VEGETA" report -type=json >"$4"
}
for n in direct proxy base head; do
	eval "u=\$url_$n"
	attack "$u" 100 2s "$tmp/warm.json"
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["success"]==1 else "warm-up failed: %s" % r)' "$tmp/warm.json"
done
watch_direct=$stub_pid
watch_proxy=$proxy_pid
watch_base="$(cat "$tmp/base/pid") $(plugin_of "$tmp/base")"
watch_head="$(cat "$tmp/head/pid") $(plugin_of "$tmp/head")"

echo "run: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), base $BASE vs working tree, rate $RATE/s for ${DURATION}s x $ROUNDS rounds" >&2
r=1
while [ $r -le "$ROUNDS" ]; do
	for n in direct proxy base head; do
		eval "u=\$url_$n; w=\$watch_$n"
		t0=$(ticks $w)
		attack "$u" "$RATE" "${DURATION}s" "$tmp/$n.$r.json"
		t1=$(ticks $w)
		echo "$((t1 - t0))" >"$tmp/$n.$r.ticks"
	done
	r=$((r + 1))
done
python3 - "$tmp" "$(getconf CLK_TCK)" "$ROUNDS" <<'PY'
import json, statistics, sys
tmp, hz, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = {n: [] for n in ("proxy", "base", "head")}
print("%-5s %-6s %9s %9s %8s %12s %10s" % ("round", "path", "add_p50", "add_p99", "success", "cpu_us/req", "cpu/proxy"))
for r in range(1, rounds + 1):
    d = json.load(open(f"{tmp}/direct.{r}.json"))["latencies"]
    cpu = {}
    for n in rows:
        rep = json.load(open(f"{tmp}/{n}.{r}.json"))
        cpu[n] = int(open(f"{tmp}/{n}.{r}.ticks").read()) / hz / rep["requests"] * 1e6
        a50 = (rep["latencies"]["50th"] - d["50th"]) / 1e6
        a99 = (rep["latencies"]["99th"] - d["99th"]) / 1e6
        rows[n].append((a50, a99, cpu[n] / cpu["proxy"] if n != "proxy" else 1.0, cpu[n], rep["success"]))
        print("%-5d %-6s %9.3f %9.3f %8.4f %12.1f %10.2f" % (r, n, a50, a99, rep["success"], cpu[n], cpu[n] / cpu["proxy"]))
print("median:")
for n, v in rows.items():
    med = lambda i: statistics.median(x[i] for x in v)
    print("      %-6s %9.3f %9.3f %8s %12.1f %10.2f" % (n, med(0), med(1), "", med(3), med(2)))
PY
for n in base head; do
	# shellcheck disable=SC2046
	rss "$n " $(eval "echo \$watch_$n")
done
