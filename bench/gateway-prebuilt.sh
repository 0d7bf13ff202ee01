#!/bin/sh
# gateway-prebuilt.sh: bench/gateway.sh's fixed-rate comparison for a host
# without Go (a quiet many-core machine, say). Build here, copy the folder
# there, run there:
#
#   sh bench/gateway-prebuilt.sh build /tmp/gwbin [BASE_REV]
#   scp -r /tmp/gwbin host: && ssh host sh gwbin/gateway-prebuilt.sh run gwbin
#
# build puts stripped binaries of vigil, the openai plugin, the stub, the
# proxy and vegeta into the folder, with this script; BASE_REV adds a second
# vigil and plugin built from that git revision (base/). run drives direct,
# proxy, proxy2 (a second proxy in front of the first: a path through two
# processes, as vigil's) and each agent at RATE req/s for DUR s, ROUNDS
# rounds interleaved, and prints p50/p99 and CPU per request (the agent's plus its plugin's),
# and in each round the plugin hop's reference, a bare gRPC round trip
# between two processes at the same rate (bench/gateway/hop);
# the median ratios to the proxy are left to the reader, as in
# bench/README.md, "Sixth pass". AGENTS lists the agents as NAME:ENV
# (ENV: the agent's extra environment, VAR=VALUE, "-" for none), default
# "head:-", plus "base:-" when base/ exists:
#
#   AGENTS="head:- gc200:GOGC=200 p1:GOMAXPROCS=1" sh gateway-prebuilt.sh run gwbin
#
# run needs sh, awk, sha256sum and python3 (for vegeta's JSON report).
set -eu

cmd=${1:-}
out=${2:-}
[ -n "$cmd" ] && [ -n "$out" ] || { echo "usage: $0 build|run DIR [BASE_REV]" >&2; exit 2; }

case $cmd in
build)
	root=$(cd "$(dirname "$0")/.." && pwd)
	mkdir -p "$out/bin/plugins"
	out=$(cd "$out" && pwd)
	flags="-trimpath -tags grpcnotrace"
	(cd "$root" &&
		go build $flags -ldflags='-s -w' -o "$out/bin/vigil" ./cmd/vigil &&
		go build $flags -ldflags='-s -w' -o "$out/bin/plugins/openai" ./plugins/providers/openai &&
		go build -trimpath -ldflags='-s -w' -o "$out/bin/stub" ./bench/gateway/stub &&
		go build -trimpath -ldflags='-s -w' -o "$out/bin/proxy" ./bench/gateway/proxy &&
		go build -trimpath -ldflags='-s -w' -o "$out/bin/hop" ./bench/gateway/hop &&
		GOBIN="$out/bin" go install -ldflags='-s -w' github.com/tsenart/vegeta/v12@v12.13.0)
	if [ -n "${3:-}" ]; then
		wt=$(mktemp -d)
		git -C "$root" worktree add -q --detach "$wt/src" "$3"
		mkdir -p "$out/base/plugins"
		(cd "$wt/src" &&
			go build $flags -ldflags='-s -w' -o "$out/base/vigil" ./cmd/vigil &&
			go build $flags -ldflags='-s -w' -o "$out/base/plugins/openai" ./plugins/providers/openai)
		git -C "$root" worktree remove --force "$wt/src"
		rm -rf "$wt"
	fi
	cp "$0" "$out/gateway-prebuilt.sh"
	echo "built into $out ($(du -sh "$out" | cut -f1)); on the host: sh $out/gateway-prebuilt.sh run $out" >&2
	exit 0
	;;
run) ;;
*) echo "usage: $0 build|run DIR [BASE_REV]" >&2; exit 2 ;;
esac

D=$(cd "$out" && pwd)
B=$D/bin
V=$B/vegeta
RATE=${RATE:-500}
DUR=${DUR:-10}
ROUNDS=${ROUNDS:-3}
default_agents="head:-"
[ -d "$D/base" ] && default_agents="$default_agents base:-"
AGENTS=${AGENTS:-$default_agents}
tmp=$(mktemp -d)
pids=""
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

waitfile() {
	i=0
	while [ ! -s "$1" ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i + 1)); done
	head -n1 "$1"
}
"$B/stub" >"$tmp/stub.addr" 2>"$tmp/stub.err" &
stub_pid=$!
pids="$pids $stub_pid"
stub=$(waitfile "$tmp/stub.addr")
"$B/proxy" -upstream "http://$stub" >"$tmp/proxy.addr" 2>"$tmp/proxy.err" &
proxy_pid=$!
pids="$pids $proxy_pid"
proxy=$(waitfile "$tmp/proxy.addr")
# proxy2: a second proxy in front of the first, the reference for a path
# through two processes (as vigil's: agent and plugin); -read-body: see
# bench/gateway/proxy.
"$B/proxy" -read-body -upstream "http://$proxy" >"$tmp/proxy2.addr" 2>"$tmp/proxy2.err" &
proxy2_pid=$!
pids="$pids $proxy2_pid"
proxy2=$(waitfile "$tmp/proxy2.addr")

# start_agent NAME ENV: an agent with the gateway in front of the stub,
# from base/ for NAME base, else from bin/.
port=7311
start_agent() {
	src=$B
	[ "$1" = base ] && src=$D/base
	d=$tmp/$1
	mkdir -p "$d/plugins"
	cp "$src/vigil" "$d/"
	cp "$src/plugins/openai" "$d/plugins/"
	sum=$(sha256sum "$d/plugins/openai" | cut -d' ' -f1)
	printf '{"plugins": [{"name": "openai", "kind": "provider", "file": "openai", "sha256": "%s"}]}\n' "$sum" >"$d/plugins/catalog.json"
	cat >"$d/vigil.yaml" <<Y
data_dir: $d/data
log_level: warn
api:
  addr: 127.0.0.1:$port
telemetry:
  gpu:
    enabled: false
plugins:
  dirs: [$d/plugins]
  start: boot
gateway:
  providers:
    - {name: bench, plugin: openai, base_url: "http://$stub/v1", max_concurrency: 512}
  models:
    - name: bench-model
      targets: [{provider: bench, model: bench-model}]
Y
	env=$2
	[ "$env" = - ] && env=VIGIL_BENCH=1
	# shellcheck disable=SC2086
	env $env "$d/vigil" agent -config "$d/vigil.yaml" >"$d/out" 2>"$d/err" &
	echo $! >"$d/pid"
	pids="$pids $!"
	echo "http://127.0.0.1:$port/openai/v1/chat/completions" >"$d/url"
	port=$((port + 1))
}
names=""
for a in $AGENTS; do
	start_agent "${a%%:*}" "${a#*:}"
	names="$names ${a%%:*}"
done

printf '{"model":"bench-model","messages":[{"role":"user","content":"hello benchmark, how are you today"}],"max_tokens":16}' >"$tmp/body.json"
url() {
	case $1 in
	direct) echo "http://$stub/v1/chat/completions" ;;
	proxy) echo "http://$proxy/v1/chat/completions" ;;
	proxy2) echo "http://$proxy2/v1/chat/completions" ;;
	*) cat "$tmp/$1/url" ;;
	esac
}
# The plugin process of agent NAME, found by its binary's path.
plugin_pid() {
	for p in /proc/[0-9]*; do
		if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q "^$tmp/$1/plugins/openai"; then
			basename "$p"
			return
		fi
	done
}
# Warm up every path; the agents' plugins start at boot, and the first
# requests wait for them.
for p in direct proxy proxy2 $names; do
	printf 'POST %s\nContent-Type: application/json\n@%s\n' "$(url "$p")" "$tmp/body.json" >"$tmp/t.$p"
	i=0
	until "$V" attack -rate=200/s -duration=2s -targets="$tmp/t.$p" | "$V" report -type=json |
		python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["success"] == 1 else 1)'; do
		i=$((i + 1))
		[ $i -lt 10 ] || { echo "warm-up of $p failed" >&2; exit 1; }
	done
done
watch_direct=$stub_pid
watch_proxy=$proxy_pid
watch_proxy2="$proxy2_pid $proxy_pid"
for n in $names; do
	pp=$(plugin_pid "$n")
	[ -n "$pp" ] || { echo "no plugin process for agent $n" >&2; exit 1; }
	eval "watch_$n=\"$(cat "$tmp/$n/pid") $pp\""
done
ticks() {
	t=0
	for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
	echo $t
}
hz=$(getconf CLK_TCK)
echo "run: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg), rate $RATE/s for ${DUR}s x $ROUNDS rounds; agents: $AGENTS"
printf '%-5s %-8s %8s %8s %8s %12s\n' round path p50_us p99_us success cpu_us/req
for r in $(seq "$ROUNDS"); do
	for p in direct proxy proxy2 $names; do
		eval "w=\$watch_$p"
		# shellcheck disable=SC2086
		t0=$(ticks $w)
		"$V" attack -rate="$RATE/s" -duration="${DUR}s" -targets="$tmp/t.$p" | "$V" report -type=json >"$tmp/r.json"
		# shellcheck disable=SC2086
		t1=$(ticks $w)
		python3 - "$tmp/r.json" "$r" "$p" "$((t1 - t0))" "$hz" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
ticks, hz = int(sys.argv[4]), int(sys.argv[5])
print("%-5s %-8s %8d %8d %8.4f %12.0f" % (sys.argv[2], sys.argv[3], r["latencies"]["50th"] / 1e3,
      r["latencies"]["99th"] / 1e3, r["success"], ticks / hz / r["requests"] * 1e6))
PY
	done
	if [ -x "$B/hop" ]; then
		"$B/hop" -rate "$RATE" -duration "${DUR}s" >"$tmp/hop.json"
		python3 - "$tmp/hop.json" "$r" <<'PY'
import json, sys
h = json.load(open(sys.argv[1]))
print("%-5s %-8s %8d %8d %8s %12.0f  (bare gRPC round trip between two processes; CPU: the server's)" % (sys.argv[2], "hop", h["p50_us"], h["p99_us"], "-", h["server_cpu_us"]))
PY
	fi
done
for n in $names; do
	eval "w=\$watch_$n"
	for pid in $w; do
		echo "$n $(cat "/proc/$pid/comm") peak RSS (VmHWM): $(awk '/VmHWM/ {print $2, $3}' "/proc/$pid/status")"
	done
done
