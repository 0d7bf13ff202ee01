# lib.sh: the parts bench/gateway.sh, gateway-ab.sh and gateway-gctail.sh
# share. Sourced, not run; expects $root to be set by the caller, and
# gw_init called before the rest.

# gw_init: the scratch folder ($tmp, removed on exit), the PIDs to stop on
# exit ($pids), python3 checked, and vegeta ($VEGETA, default
# .tools/vegeta) installed from the module proxy when missing.
gw_init() {
	VEGETA=${VEGETA:-$root/.tools/vegeta}
	tmp=$(mktemp -d)
	pids=""
	trap gw_cleanup EXIT INT TERM
	command -v python3 >/dev/null || { echo "python3 is missing" >&2; exit 1; }
	if [ ! -x "$VEGETA" ]; then
		echo "installing vegeta into $root/.tools ..." >&2
		(cd "$root" && GOBIN="$root/.tools" go install github.com/tsenart/vegeta/v12@v12.13.0)
	fi
}

gw_cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}

# Build tags of both binaries, as the Makefile sets them (grpcnotrace: see
# the Makefile and bench/README.md, "Fifth pass"); GW_TAGS= builds without.
GW_TAGS=${GW_TAGS-grpcnotrace}

# gw_build SRC OUT PLUGIN_ENV: builds vigil and the openai plugin from the
# source tree SRC into OUT and OUT/plugins, with a catalog trusting the
# plugin; PLUGIN_ENV is the plugin's extra environment as JSON strings
# ('"GOMAXPROCS=1"'), since plugins do not inherit the agent's.
gw_build() {
	mkdir -p "$2/plugins"
	(cd "$1" && export CGO_CFLAGS="-O2 -g -Wno-deprecated-declarations" &&
		go build -trimpath -tags "$GW_TAGS" -o "$2/vigil" ./cmd/vigil &&
		go build -trimpath -tags "$GW_TAGS" -o "$2/plugins/openai" ./plugins/providers/openai)
	sum=$(sha256sum "$2/plugins/openai" | cut -d' ' -f1)
	printf '{"plugins": [{"name": "openai", "kind": "provider", "file": "openai", "sha256": "%s", "env": [%s]}]}\n' "$sum" "$3" >"$2/plugins/catalog.json"
}

# wait_line FILE: the first line of FILE once it is there.
wait_line() {
	i=0
	while [ ! -s "$1" ]; do
		i=$((i + 1))
		[ $i -gt 200 ] && { echo "timed out waiting for $1" >&2; exit 1; }
		sleep 0.05
	done
	head -n1 "$1"
}

# gw_start_upstreams: builds and starts the stub, the minimal proxy in
# front of it, and a second proxy in front of that one (proxy2, the
# reference for a path through two processes); sets stub, proxy, proxy2
# (addresses), stub_pid, proxy_pid and proxy2_pid.
gw_start_upstreams() {
	(cd "$root" && go build -trimpath -o "$tmp/stub" ./bench/gateway/stub && go build -trimpath -o "$tmp/proxy" ./bench/gateway/proxy)
	"$tmp/stub" >"$tmp/stub.addr" 2>"$tmp/stub.err" &
	stub_pid=$!
	pids="$pids $stub_pid"
	stub=$(wait_line "$tmp/stub.addr")
	"$tmp/proxy" -upstream "http://$stub" >"$tmp/proxy.addr" 2>"$tmp/proxy.err" &
	proxy_pid=$!
	pids="$pids $proxy_pid"
	proxy=$(wait_line "$tmp/proxy.addr")
	"$tmp/proxy" -read-body -upstream "http://$proxy" >"$tmp/proxy2.addr" 2>"$tmp/proxy2.err" &
	proxy2_pid=$!
	pids="$pids $proxy2_pid"
	proxy2=$(wait_line "$tmp/proxy2.addr")
}

# gw_config DIR LEVEL: DIR/vigil.yaml, an agent with its data in DIR, its
# plugins in DIR/plugins, logging at LEVEL, and the gateway in front of the
# stub.
gw_config() {
	cat >"$1/vigil.yaml" <<YAML
data_dir: $1/data
log_format: json
log_level: $2
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
}

# gw_start_agent DIR ENV: starts DIR/vigil (built by gw_build) with the
# gateway in front of the stub and ENV added to its environment; writes
# its PID to DIR/pid and its API address to DIR/addr.
gw_start_agent() {
	gw_config "$1" warn
	# shellcheck disable=SC2086
	env $2 "$1/vigil" agent -config "$1/vigil.yaml" >"$1/vigil.out" 2>"$1/vigil.err" &
	echo $! >"$1/pid"
	pids="$pids $!"
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

# plugin_of DIR: the PID of the openai plugin of the agent started in DIR.
plugin_of() {
	curl -s "http://$(cat "$1/addr")/v1/plugins" | python3 -c 'import json,sys; print(next(p["pid"] for p in json.load(sys.stdin)["plugins"] if p["name"]=="bench"))'
}

# ticks PID...: user+system CPU ticks of the processes.
ticks() {
	t=0
	for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done
	echo $t
}

# rss LABEL PID...: each process's peak RSS, and its anonymous and
# file-backed (code) parts now.
rss() {
	label=$1
	shift
	for p in "$@"; do
		printf '%s%s peak RSS (VmHWM): %s (now: %s anonymous, %s file-backed)\n' "$label" "$(cat /proc/$p/comm)" \
			"$(awk '/VmHWM/ {print $2, $3}' /proc/$p/status)" "$(awk '/RssAnon/ {print $2, $3}' /proc/$p/status)" "$(awk '/RssFile/ {print $2, $3}' /proc/$p/status)"
	done
}

# rss_detail PID...: with RSS_DETAIL=1, each process's largest mappings by
# resident size (anonymous, file-backed, and file-backed in 2 MB pages),
# from /proc/PID/smaps: where bench/README.md's RSS breakdown comes from.
rss_detail() {
	[ "${RSS_DETAIL:-}" = 1 ] || return 0
	for p in "$@"; do
		echo "$(cat /proc/$p/comm): $(find /proc/$p/fd -lname 'socket:*' 2>/dev/null | wc -l) sockets open, $(ls /proc/$p/task | wc -l) threads; largest mappings (kB: rss, anonymous, file in 2 MB pages, size)"
		python3 - "$p" <<'PY'
import re, sys
rows, cur = [], None
for line in open(f"/proc/{sys.argv[1]}/smaps"):
    if re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line):
        parts = line.split()
        cur = {"name": parts[5] if len(parts) > 5 else "[anon]", "perm": parts[1]}
        rows.append(cur)
    elif ":" in line:
        k, v = line.split(":", 1)
        if v.strip().endswith("kB"):
            cur[k] = int(v.split()[0])
for r in sorted(rows, key=lambda r: -r.get("Rss", 0))[:8]:
    print("  %8d %8d %8d %8d  %s %s" % (r.get("Rss", 0), r.get("Anonymous", 0), r.get("FilePmdMapped", 0), r.get("Size", 0), r["perm"], r["name"].rsplit("/", 1)[-1]))
PY
	done
}
