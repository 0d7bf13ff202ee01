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
# build: BASE=HEAD HEAD_ENV=... sh bench/gateway-ab.sh.
#
#   BASE=9a5c0dd sh bench/gateway-ab.sh
#   BASE=9a5c0dd RATE=500 DURATION=10 ROUNDS=3 sh bench/gateway-ab.sh
set -eu

BASE=${BASE:?set BASE to the git revision to compare with}
RATE=${RATE:-200}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
VEGETA=${VEGETA:-$root/.tools/vegeta}
tmp=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

command -v python3 >/dev/null || { echo "python3 is missing" >&2; exit 1; }
if [ ! -x "$VEGETA" ]; then
	(cd "$root" && GOBIN="$root/.tools" go install github.com/tsenart/vegeta/v12@v12.13.0)
fi

echo "building $BASE and the working tree..." >&2
mkdir -p "$tmp/src-base" "$tmp/base/plugins" "$tmp/head/plugins"
(cd "$root" && git archive "$BASE" | tar -x -C "$tmp/src-base")
build() { # build SRC OUT
	(cd "$1" && export CGO_CFLAGS="-O2 -g -Wno-deprecated-declarations" &&
		go build -trimpath -o "$2/vigil" ./cmd/vigil &&
		go build -trimpath -o "$2/plugins/openai" ./plugins/providers/openai)
	sum=$(sha256sum "$2/plugins/openai" | cut -d' ' -f1)
	printf '{"plugins": [{"name": "openai", "kind": "provider", "file": "openai", "sha256": "%s"}]}\n' "$sum" >"$2/plugins/catalog.json"
}
build "$tmp/src-base" "$tmp/base"
build "$root" "$tmp/head"
(cd "$root" && go build -trimpath -o "$tmp/stub" ./bench/gateway/stub && go build -trimpath -o "$tmp/proxy" ./bench/gateway/proxy)

wait_line() {
	i=0
	while [ ! -s "$1" ]; do
		i=$((i + 1))
		[ $i -gt 200 ] && { echo "timed out waiting for $1" >&2; exit 1; }
		sleep 0.05
	done
	head -n1 "$1"
}
"$tmp/stub" >"$tmp/stub.addr" 2>"$tmp/stub.err" &
stub_pid=$!
pids="$pids $stub_pid"
stub=$(wait_line "$tmp/stub.addr")
"$tmp/proxy" -upstream "http://$stub" >"$tmp/proxy.addr" 2>"$tmp/proxy.err" &
proxy_pid=$!
pids="$pids $proxy_pid"
proxy=$(wait_line "$tmp/proxy.addr")

start_agent() { # start_agent DIR ENV: writes DIR/addr
	cat >"$1/vigil.yaml" <<YAML
data_dir: $1/data
log_format: json
log_level: warn
api:
  addr: 127.0.0.1:0
telemetry:
  gpu:
    enabled: false
plugins:
  dirs: [$1/plugins]
gateway:
  providers:
    - {name: bench, plugin: openai, base_url: "http://$stub/v1", max_concurrency: 512}
  models:
    - name: bench-model
      targets: [{provider: bench, model: bench-model}]
YAML
	env $2 "$1/vigil" agent -config "$1/vigil.yaml" >"$1/vigil.out" 2>"$1/vigil.err" &
	echo $! >"$1/pid"
	i=0
	addr=""
	while [ -z "$addr" ]; do
		addr=$(sed -n 's|.*API: http://\(127\.0\.0\.1:[0-9]*\).*|\1|p' "$1/vigil.out" | head -n1)
		i=$((i + 1))
		[ $i -gt 300 ] && { echo "the agent in $1 did not start:" >&2; cat "$1/vigil.err" >&2; exit 1; }
		[ -z "$addr" ] && sleep 0.05
	done
	echo "$addr" >"$1/addr"
}
start_agent "$tmp/base" "${BASE_ENV:-}"
pids="$pids $(cat "$tmp/base/pid")"
start_agent "$tmp/head" "${HEAD_ENV:-}"
pids="$pids $(cat "$tmp/head/pid")"

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
plugin_of() { curl -s "http://$(cat "$1/addr")/v1/plugins" | python3 -c 'import json,sys; print(next(p["pid"] for p in json.load(sys.stdin)["plugins"] if p["name"]=="bench"))'; }
watch_direct=$stub_pid
watch_proxy=$proxy_pid
watch_base="$(cat "$tmp/base/pid") $(plugin_of "$tmp/base")"
watch_head="$(cat "$tmp/head/pid") $(plugin_of "$tmp/head")"
ticks() {
	t=0
	for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
	echo $t
}

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
	for p in $(eval "echo \$watch_$n"); do
		printf '%s %s peak RSS (VmHWM): %s (now: %s anonymous, %s file-backed)\n' "$n" "$(cat /proc/$p/comm)" \
			"$(awk '/VmHWM/ {print $2, $3}' /proc/$p/status)" "$(awk '/RssAnon/ {print $2, $3}' /proc/$p/status)" "$(awk '/RssFile/ {print $2, $3}' /proc/$p/status)"
	done
done
