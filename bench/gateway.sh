#!/bin/sh
# gateway.sh: what the LLM gateway adds to a request. One OpenAI-shaped
# upstream (bench/gateway/stub, test/openaistub's deterministic server) is
# driven three ways in one run:
#   direct  client -> stub
#   proxy   client -> bench/gateway/proxy (httputil.ReverseProxy) -> stub
#   proxy2  client -> proxy -> proxy -> stub (two processes in the path,
#           as vigil has; fixed rate only)
#   vigil   client -> vigil agent /openai/v1 -> openai plugin (gRPC) -> stub
# first at a fixed rate with vegeta (RATE req/s for DURATION s), then at
# saturation with wrk (4 and 32 connections, WRK_DURATION s each).
# Reported: p50/p99 latency and what proxy and vigil add to direct's, CPU
# microseconds per request of the proxy process and of the agent plus its
# plugin process, and the agent's and plugin's peak RSS. For the plugin
# hop's share, bench/gateway/hop then drives a bare gRPC round trip between
# two processes (unix socket, mutual TLS, as go-plugin's AutoMTLS) at the
# same rate, and the ratios to the proxy are printed with and without it.
#
#   sh bench/gateway.sh
#   RATE=500 DURATION=30 WRK_DURATION=10 sh bench/gateway.sh
#   PROFILE_DIR=/tmp/prof sh bench/gateway.sh   # + perf profiles of agent and plugin
#   RSS_DETAIL=1 sh bench/gateway.sh             # + each process's largest mappings
#
# With PROFILE_DIR set (needs Linux perf and permission to attach), the
# fixed-rate vigil run is also sampled with `perf record` and
# PROFILE_DIR/{agent,plugin}.txt get the hottest functions of each
# process (self and with children).
#
# Needs Go, wrk (Debian: apt-get install wrk) and python3; vegeta
# (github.com/tsenart/vegeta/v12) is installed into .tools/ if missing.
set -eu

RATE=${RATE:-500}
DURATION=${DURATION:-20}
WRK_DURATION=${WRK_DURATION:-10}
root=$(cd "$(dirname "$0")/.." && pwd)
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }
# shellcheck source=bench/gateway/lib.sh
. "$root/bench/gateway/lib.sh"
gw_init

echo "building..." >&2
# PLUGIN_ENV: extra environment of the plugin as JSON strings, such as
# '"GOMAXPROCS=1"'; AGENT_ENV: of the agent, such as GOMAXPROCS=1.
gw_build "$root" "$tmp" "${PLUGIN_ENV:-}"
gw_start_upstreams
gw_start_agent "$tmp" "${AGENT_ENV:-}"
agent_pid=$(cat "$tmp/pid")
vigil=$(cat "$tmp/addr")

body='{"model":"bench-model","messages":[{"role":"user","content":"hello benchmark, how are you today"}],"max_tokens":16}'
printf '%s' "$body" >"$tmp/body.json"
targets() { # targets URL: a vegeta target file
	printf 'POST %s\nContent-Type: application/json\n@%s\n' "$1" "$tmp/body.json" >"$tmp/targets"
}
url_direct="http://$stub/v1/chat/completions"
url_proxy="http://$proxy/v1/chat/completions"
url_proxy2="http://$proxy2/v1/chat/completions"
url_vigil="http://$vigil/openai/v1/chat/completions"

# Warm up every path (and start the plugin).
for u in "$url_direct" "$url_proxy" "$url_proxy2" "$url_vigil"; do
	targets "$u"
	"$VEGETA" attack -rate=100/s -duration=2s -targets="$tmp/targets" | "$VEGETA" report -type=json >"$tmp/warm.json"
	python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if r["success"]==1 else "warm-up failed: %s" % r)' "$tmp/warm.json"
done
plugin_pid=$(plugin_of "$tmp")

hz=$(getconf CLK_TCK)

echo "run: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), rate $RATE/s for ${DURATION}s" >&2
printf '%-7s %9s %9s %9s %9s %8s %12s\n' path p50_ms p99_ms add_p50 add_p99 success cpu_us/req
for name in direct proxy proxy2 vigil; do
	eval "u=\$url_$name"
	targets "$u"
	case $name in
	direct) watch="$stub_pid" ;;
	proxy) watch="$proxy_pid" ;;
	proxy2) watch="$proxy2_pid $proxy_pid" ;;
	vigil) watch="$agent_pid $plugin_pid" ;;
	esac
	t0=$(ticks $watch)
	perf_pids=""
	if [ -n "${PROFILE_DIR:-}" ] && [ "$name" = vigil ]; then
		mkdir -p "$PROFILE_DIR"
		perf record -q -F 499 -g -o "$PROFILE_DIR/agent.data" -p "$agent_pid" >/dev/null 2>&1 &
		perf_pids="$!"
		perf record -q -F 499 -g -o "$PROFILE_DIR/plugin.data" -p "$plugin_pid" >/dev/null 2>&1 &
		perf_pids="$perf_pids $!"
	fi
	"$VEGETA" attack -rate="$RATE/s" -duration="${DURATION}s" -targets="$tmp/targets" | "$VEGETA" report -type=json >"$tmp/$name.json"
	t1=$(ticks $watch)
	echo "$((t1 - t0))" >"$tmp/$name.ticks"
	for p in $perf_pids; do kill -INT "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
done
if [ -n "${PROFILE_DIR:-}" ]; then
	for n in agent plugin; do
		{
			echo "== self"
			perf report -i "$PROFILE_DIR/$n.data" --stdio --no-children --sort symbol 2>/dev/null | grep -v '^#' | grep '%' | head -60
			echo "== with children"
			perf report -i "$PROFILE_DIR/$n.data" --stdio --children --sort symbol -g none 2>/dev/null | grep -v '^#' | grep '%' | head -80
		} >"$PROFILE_DIR/$n.txt"
	done
	echo "profiles: $PROFILE_DIR/agent.txt $PROFILE_DIR/plugin.txt" >&2
fi
# The plugin hop's reference cost in the same run, at the same rate: a
# bare gRPC round trip between two processes (unix socket, mutual TLS).
(cd "$root" && go build -trimpath -o "$tmp/hop" ./bench/gateway/hop)
"$tmp/hop" -rate "$RATE" -duration "${DURATION}s" >"$tmp/hop.json"
python3 - "$tmp" "$hz" <<'PY'
import json, sys
tmp, hz = sys.argv[1], int(sys.argv[2])
res = {n: json.load(open(f"{tmp}/{n}.json")) for n in ("direct", "proxy", "proxy2", "vigil")}
d50, d99 = res["direct"]["latencies"]["50th"], res["direct"]["latencies"]["99th"]
for n, r in res.items():
    p50, p99 = r["latencies"]["50th"], r["latencies"]["99th"]
    ticks = int(open(f"{tmp}/{n}.ticks").read())
    cpu = ticks / hz / r["requests"] * 1e6
    add50 = "-" if n == "direct" else "%.3f" % ((p50 - d50) / 1e6)
    add99 = "-" if n == "direct" else "%.3f" % ((p99 - d99) / 1e6)
    print("%-7s %9.3f %9.3f %9s %9s %8.4f %12.1f" % (n, p50 / 1e6, p99 / 1e6, add50, add99, r["success"], cpu))
print("(cpu_us/req: direct = the stub itself; proxy = the proxy process; proxy2 = both proxies; vigil = agent + openai plugin)")
hop = json.load(open(f"{tmp}/hop.json"))
print("hop     %9.3f %9.3f   bare gRPC round trip between two processes (unix socket, mTLS), %d calls; server CPU %.0f us/call"
      % (hop["p50_us"] / 1e3, hop["p99_us"] / 1e3, hop["requests"], hop["server_cpu_us"]))
add99 = {n: (res[n]["latencies"]["99th"] - d99) / 1e6 for n in ("proxy", "proxy2", "vigil")}
cpu = {n: int(open(f"{tmp}/{n}.ticks").read()) / res[n]["requests"] for n in ("proxy", "proxy2", "vigil")}
pa99, va99 = add99["proxy"], add99["vigil"]
print("vigil/proxy: CPU per request %.2fx; added p99 %.2fx; added p99 / (proxy's added p99 + the hop's p99) %.2fx"
      % (cpu["vigil"] / cpu["proxy"], va99 / pa99, va99 / (pa99 + hop["p99_us"] / 1e3)))
print("vigil/proxy2: CPU per request %.2fx; added p99 %.2fx   (proxy2/proxy: CPU %.2fx, added p99 %.2fx)"
      % (cpu["vigil"] / cpu["proxy2"], va99 / add99["proxy2"], cpu["proxy2"] / cpu["proxy"], add99["proxy2"] / pa99))
PY
rss "" $agent_pid $plugin_pid
rss_detail $agent_pid $plugin_pid

cat >"$tmp/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = [[$body]]
LUA
echo >&2
printf '%-7s %5s %10s %9s %9s\n' path conns req_per_s p50_ms p99_ms
for c in 4 32; do
	for name in direct proxy vigil; do
		eval "u=\$url_$name"
		wrk -t2 -c"$c" -d"${WRK_DURATION}s" --latency -s "$tmp/post.lua" "$u" >"$tmp/wrk.out"
		python3 - "$tmp/wrk.out" "$name" "$c" <<'PY'
import re, sys
out, name, c = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3]
def ms(label):
    m = re.search(r"^\s*%s\s+([\d.]+)(us|ms|s)" % re.escape(label), out, re.M)
    v, u = float(m.group(1)), m.group(2)
    return v / 1000 if u == "us" else v * 1000 if u == "s" else v
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
print("%-7s %5s %10.0f %9.3f %9.3f%s" % (name, c, rps, ms("50%"), ms("99%"), "  NON-2XX: " + errors.group(1) if errors else ""))
PY
	done
done
rss "after saturation: " $agent_pid $plugin_pid
printf 'vigil requests shed (gateway.max_in_flight): %s\n' "$(curl -s "http://$vigil/metrics" | awk '/^vigil_llm_shed_requests_total/ {print $2}')"
