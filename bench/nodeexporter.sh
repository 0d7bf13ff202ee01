#!/usr/bin/env bash
# nodeexporter.sh: Vigil's host metrics (vigil_host_*) next to node_exporter's
# on this machine. Starts, on free loopback ports and with temporary
# directories, node_exporter (its own process, not the Debian service), a
# `vigil agent` (GPU collector off, telemetry.host.interval 5s or -i) and one
# Prometheus scraping both every 5 s; after DURATION it asks Prometheus for
# pairs of equivalent expressions over each window of WINDOWS and prints a
# markdown table: metric, window, node_exporter's value, Vigil's, and
# Vigil's difference relative to node_exporter's in %. Progress goes to
# stderr, the table to stdout.
#
#   bench/nodeexporter.sh                 # 5 minutes, windows 1m 2m 5m
#   bench/nodeexporter.sh -d 2m           # the quick run (windows 1m 2m)
#   DURATION=10m WINDOWS="2m 5m 10m" bench/nodeexporter.sh
#
# A measurement, not a test: it exits non-zero only when it cannot run (a
# missing tool, a process that does not start, a query that fails), never
# because of a difference. What docs/metrics.md says differs by design is
# left out or corrected for and listed under the table.
#
# Needs prometheus and node_exporter (Debian: prometheus,
# prometheus-node-exporter; installed with apt-get when run as root, which
# on a host with systemd also enables Debian's own services: this script
# neither uses nor stops them), curl and python3 (standard library only);
# and Go when bin/vigil is absent (VIGIL=PATH picks another binary).
set -euo pipefail

usage() {
	cat >&2 <<'EOF'
usage: bench/nodeexporter.sh [-d DURATION] [-w "WINDOW ..."] [-i INTERVAL] [-k]
  -d DURATION  how long both are scraped before the queries (default 5m;
               env DURATION): seconds, or with s, m or h
  -w WINDOWS   windows for rate() and avg_over_time(), each at most DURATION
               (default: those of 1m 2m 5m 10m that fit; env WINDOWS)
  -i INTERVAL  the agent's telemetry.host.interval (default 5s, its own
               default; env INTERVAL): the lag behind node_exporter's reads
  -k           keep the temporary directory (logs, configs, tsdb)
env: VIGIL (agent binary, default bin/vigil, built if absent),
     NODE_EXPORTER, PROMETHEUS (binaries, default from PATH)
EOF
	exit 2
}

DURATION=${DURATION:-5m}
INTERVAL=${INTERVAL:-5s}
WINDOWS=${WINDOWS:-}
KEEP=${KEEP:-0}
while getopts 'd:w:i:kh' opt; do
	case $opt in
	d) DURATION=$OPTARG ;;
	w) WINDOWS=$OPTARG ;;
	i) INTERVAL=$OPTARG ;;
	k) KEEP=1 ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 0 ] || usage

# seconds DURATION: 90, 90s, 2m, 1h -> seconds.
seconds() {
	case $1 in
	*[!0-9smh]* | '' | [smh]*) return 1 ;;
	*h) echo $((${1%h} * 3600)) ;;
	*m) echo $((${1%m} * 60)) ;;
	*s) echo "${1%s}" ;;
	*) echo "$1" ;;
	esac
}
dur_s=$(seconds "$DURATION") || { echo "-d/DURATION: not a duration: $DURATION" >&2; exit 2; }
[ "$dur_s" -ge 60 ] || { echo "-d/DURATION: at least 1m, got $DURATION" >&2; exit 2; }
if [ -z "$WINDOWS" ]; then
	for w in 60 120 300 600; do
		[ "$w" -le "$dur_s" ] && WINDOWS="$WINDOWS ${w}s"
	done
fi
win_s=""
for w in $WINDOWS; do
	s=$(seconds "$w") || { echo "-w/WINDOWS: not a duration: $w" >&2; exit 2; }
	if [ "$s" -lt 20 ] || [ "$s" -gt "$dur_s" ]; then
		echo "-w/WINDOWS: $w must be between 20s and the duration ($DURATION)" >&2
		exit 2
	fi
	win_s="$win_s $s"
done

log() { echo "nodeexporter: $*" >&2; }
die() {
	echo "nodeexporter: $*" >&2
	exit 1
}

root=$(cd "$(dirname "$0")/.." && pwd)

# --- tools -----------------------------------------------------------------
NODE_EXPORTER=${NODE_EXPORTER:-$(command -v prometheus-node-exporter || command -v node_exporter || true)}
PROMETHEUS=${PROMETHEUS:-$(command -v prometheus || true)}
missing=""
[ -n "$NODE_EXPORTER" ] || missing="$missing prometheus-node-exporter"
[ -n "$PROMETHEUS" ] || missing="$missing prometheus"
command -v curl >/dev/null || missing="$missing curl"
command -v python3 >/dev/null || missing="$missing python3"
if [ -n "$missing" ]; then
	if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
		log "installing$missing with apt-get (on a systemd host Debian also starts its own services; left alone)"
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing >&2 ||
			die "apt-get install$missing failed"
		NODE_EXPORTER=${NODE_EXPORTER:-$(command -v prometheus-node-exporter || command -v node_exporter || true)}
		PROMETHEUS=${PROMETHEUS:-$(command -v prometheus || true)}
	else
		die "missing:$missing (Debian: apt-get install$missing, as root)"
	fi
fi

for b in "$NODE_EXPORTER" "$PROMETHEUS"; do
	[ -x "$b" ] || die "$b is not an executable"
done

VIGIL=${VIGIL:-$root/bin/vigil}
if [ ! -x "$VIGIL" ]; then
	[ "$VIGIL" = "$root/bin/vigil" ] || die "VIGIL=$VIGIL is not an executable"
	command -v go >/dev/null || die "bin/vigil is absent and there is no go to build it (or set VIGIL=PATH)"
	log "building bin/vigil..."
	(cd "$root" && CGO_CFLAGS="-O2 -g -Wno-deprecated-declarations" \
		go build -trimpath -tags grpcnotrace -o bin/vigil ./cmd/vigil) || die "building bin/vigil failed"
fi

# --- processes -------------------------------------------------------------
tmp=$(mktemp -d)
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ "$KEEP" = 1 ]; then log "kept $tmp"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# pause SECONDS: a sleep that a signal interrupts at once (bash runs a trap
# only when the foreground command ends; `wait` ends on the signal).
pause() {
	sleep "$1" &
	pids+=("$!")
	wait "$!"
}

# free_port: a loopback port the kernel has just handed out (and taken back);
# a process started on it can still lose it to another, so starts retry.
free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL PID LOG: until URL answers 2xx, PID exits, or 20 s pass.
wait_http() {
	local i
	for ((i = 0; i < 200; i++)); do
		curl -sf -o /dev/null "$1" && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	echo "no answer from $1 within 20 s; log:" >&2
	tail -n 20 "$3" >&2
	return 1
}

# The loopback interface is compared too (both leave it out by default): on
# a machine whose other interfaces are idle it is the one with traffic (the
# scrapes). Vigil gets every interface there is now; node_exporter drops
# only its default exclusion of lo.
ifaces="" iface_list=""
for f in /sys/class/net/*; do
	ifaces="$ifaces ${f##*/}"
	iface_list="$iface_list${iface_list:+, }\"${f##*/}\""
done

# node_exporter with its defaults otherwise (Debian's, for Debian's
# binary), on a port of its own.
ne_addr=""
for _ in 1 2 3; do
	port=$(free_port)
	"$NODE_EXPORTER" --web.listen-address="127.0.0.1:$port" --collector.netdev.device-exclude='^$' \
		>"$tmp/node_exporter.log" 2>&1 &
	pids+=("$!")
	if wait_http "http://127.0.0.1:$port/metrics" "$!" "$tmp/node_exporter.log"; then
		ne_addr=127.0.0.1:$port
		break
	fi
done
[ -n "$ne_addr" ] || { tail -n 20 "$tmp/node_exporter.log" >&2; die "node_exporter did not start"; }
log "node_exporter ($NODE_EXPORTER) on $ne_addr"

mkdir -p "$tmp/vigil"
cat >"$tmp/vigil/vigil.yaml" <<YAML
data_dir: $tmp/vigil/data
log_level: warn
api:
  addr: 127.0.0.1:0
telemetry:
  gpu:
    enabled: false
  host:
    interval: $INTERVAL
    interfaces: [$iface_list]
YAML
"$VIGIL" agent -config "$tmp/vigil/vigil.yaml" >"$tmp/vigil/out" 2>"$tmp/vigil/err" &
vigil_pid=$!
pids+=("$vigil_pid")
vigil_addr=""
for ((i = 0; i < 200; i++)); do
	vigil_addr=$(sed -n 's#.*API: http://\(127\.0\.0\.1:[0-9]*\).*#\1#p' "$tmp/vigil/out" | head -n 1)
	[ -n "$vigil_addr" ] && break
	kill -0 "$vigil_pid" 2>/dev/null || break
	sleep 0.1
done
[ -n "$vigil_addr" ] || { tail -n 20 "$tmp/vigil/err" >&2; die "the agent did not start"; }
log "vigil agent ($VIGIL) on $vigil_addr"

mkdir -p "$tmp/prometheus"
cat >"$tmp/prometheus/prometheus.yml" <<YAML
global:
  scrape_interval: 5s
  scrape_timeout: 4s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: ['$ne_addr']
  - job_name: vigil
    static_configs:
      - targets: ['$vigil_addr']
YAML
prom=""
for _ in 1 2 3; do
	port=$(free_port)
	"$PROMETHEUS" --config.file="$tmp/prometheus/prometheus.yml" \
		--storage.tsdb.path="$tmp/prometheus/data" \
		--web.listen-address="127.0.0.1:$port" >"$tmp/prometheus/log" 2>&1 &
	pids+=("$!")
	if wait_http "http://127.0.0.1:$port/-/ready" "$!" "$tmp/prometheus/log"; then
		prom=http://127.0.0.1:$port
		break
	fi
done
[ -n "$prom" ] || { tail -n 20 "$tmp/prometheus/log" >&2; die "Prometheus did not start"; }
log "Prometheus ($PROMETHEUS) on ${prom#http://}, scraping both every 5 s"

# Both targets up, then a settle of three scrapes so that each series has
# samples before the first window starts.
up=0
for ((i = 0; i < 60; i++)); do
	up=$(curl -sf "$prom/api/v1/query" --data-urlencode 'query=sum(up{job=~"node|vigil"})' |
		python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(int(float(r[0]["value"][1])) if r else 0)') || up=0
	[ "$up" = 2 ] && break
	sleep 1
done
[ "$up" = 2 ] || die "Prometheus does not see both targets up after 60 s (see its targets page, $prom/targets)"
pause 15
start=$(date -u +%s)
log "both targets up; measuring for ${dur_s}s (until $(date -u -d "@$((start + dur_s))" +%H:%M:%S) UTC), windows:$WINDOWS"
left=$dur_s
while [ "$left" -gt 0 ]; do
	step=$((left < 60 ? left : 60))
	pause "$step"
	left=$((left - step))
	kill -0 "$vigil_pid" 2>/dev/null || die "the agent exited; its log: $(tail -n 5 "$tmp/vigil/err")"
	[ "$left" -gt 0 ] && log "${left}s left"
done
end=$(date -u +%s)

{
	echo "run: $(date -u -d "@$start" +%Y-%m-%dT%H:%M:%SZ) to $(date -u -d "@$end" +%H:%M:%SZ), $(hostname), $(nproc) CPUs, kernel $(uname -r), load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "node_exporter: $("$NODE_EXPORTER" --version 2>&1 | head -n 1)"
	echo "prometheus: $("$PROMETHEUS" --version 2>&1 | head -n 1)"
	echo "vigil: $("$VIGIL" version 2>&1 | head -n 1); telemetry.host.interval $INTERVAL; both scraped every 5 s"
} >"$tmp/header"

# shellcheck disable=SC2086
IFACES="$ifaces" python3 - "$prom" "$end" "$tmp/header" $win_s <<'PY'
import json, os, sys, urllib.parse, urllib.request

prom, end, header = sys.argv[1], sys.argv[2], sys.argv[3]
windows = [int(w) for w in sys.argv[4:]]
ifaces = set(os.environ["IFACES"].split())


def query(expr):
    """Instant query at the end of the run: {label-key: value}."""
    url = prom + "/api/v1/query?" + urllib.parse.urlencode({"query": expr, "time": end})
    with urllib.request.urlopen(url, timeout=30) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise SystemExit("query failed: %s: %s" % (expr, body))
    out = {}
    for s in body["data"]["result"]:
        m = s["metric"]
        key = m.get("_k", "")
        out[key] = float(s["value"][1])
    return out


def keyed(expr, label):
    """expr with its `label` copied into _k (the join key), others kept."""
    if label is None:
        return 'label_replace(%s, "_k", "", "", "")' % expr
    return 'label_replace(%s, "_k", "$1", "%s", "(.*)")' % (expr, label)


def wname(s):
    return "%dm" % (s // 60) if s % 60 == 0 else "%ds" % s


# (title, unit, node expression, node key label, vigil expression, vigil
# key label, windowed). {w} is the window; a windowed pair is asked once
# per window, the others once at the end ("end").
R = "rate(%s[{w}])"
pairs = [
    ("cpu", "cores", "sum by (mode) (%s)" % (R % "node_cpu_seconds_total"), "mode",
     "sum by (mode) (%s)" % (R % "vigil_host_cpu_seconds_total"), "mode", True),
    ("cpu busy", "cores", 'sum by (cpu) (%s)' % (R % 'node_cpu_seconds_total{mode!~"idle|iowait"}'), "cpu",
     'sum by (cpu) (%s)' % (R % 'vigil_host_cpu_seconds_total{mode!~"idle|iowait"}'), "cpu", True),
    ("network receive", "B/s", R % "node_network_receive_bytes_total", "device",
     R % "vigil_host_network_receive_bytes_total", "interface", True),
    ("network transmit", "B/s", R % "node_network_transmit_bytes_total", "device",
     R % "vigil_host_network_transmit_bytes_total", "interface", True),
    ("network receive", "packets/s", R % "node_network_receive_packets_total", "device",
     R % "vigil_host_network_receive_packets_total", "interface", True),
    ("network transmit", "packets/s", R % "node_network_transmit_packets_total", "device",
     R % "vigil_host_network_transmit_packets_total", "interface", True),
    ("disk read", "B/s", R % "node_disk_read_bytes_total", "device",
     R % "vigil_host_disk_read_bytes_total", "device", True),
    ("disk written", "B/s", R % "node_disk_written_bytes_total", "device",
     R % "vigil_host_disk_written_bytes_total", "device", True),
    ("disk reads", "/s", R % "node_disk_reads_completed_total", "device",
     R % "vigil_host_disk_reads_completed_total", "device", True),
    ("disk writes", "/s", R % "node_disk_writes_completed_total", "device",
     R % "vigil_host_disk_writes_completed_total", "device", True),
    ("disk io time", "s/s", R % "node_disk_io_time_seconds_total", "device",
     R % "vigil_host_disk_io_time_seconds_total", "device", True),
    ("load1", "", "avg_over_time(node_load1[{w}])", None,
     "avg_over_time(vigil_host_load1[{w}])", None, True),
    ("memory available", "B", "avg_over_time(node_memory_MemAvailable_bytes[{w}])", None,
     "avg_over_time(vigil_host_memory_available_bytes[{w}])", None, True),
    ("memory total", "B", "node_memory_MemTotal_bytes", None,
     "vigil_host_memory_total_bytes", None, False),
    ("swap total", "B", "node_memory_SwapTotal_bytes", None,
     "vigil_host_swap_total_bytes", None, False),
    ("filesystem size", "B", 'node_filesystem_size_bytes', "mountpoint",
     "vigil_host_filesystem_size_bytes", "mountpoint", False),
    ("filesystem available", "B", 'avg_over_time(node_filesystem_avail_bytes[{w}])', "mountpoint",
     "avg_over_time(vigil_host_filesystem_available_bytes[{w}])", "mountpoint", True),
]


# Differences by design (docs/metrics.md), so not differences of a reading:
def by_design(title, side, key):
    if title.startswith("filesystem") and side == "vigil" and \
            (key in ("/run", "/mnt", "/media") or key.startswith(("/run/", "/mnt/", "/media/"))):
        return "Debian's node_exporter leaves out /run, /mnt and /media; Vigil keeps them"
    if title.startswith("disk") and side == "node" and key.startswith(("zram", "sr")):
        return "Vigil skips zram and sr devices; node_exporter 1.8 and later skip zram too"
    if title.startswith("network") and side == "node" and key not in ifaces:
        return "appeared after the agent started with the interfaces there were"
    return None


def fmt(v):
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e9:
        return "%.4g G" % (v / 1e9)
    if a >= 1e6:
        return "%.4g M" % (v / 1e6)
    if a >= 1e4:
        return "%.4g k" % (v / 1e3)
    return "%.4g" % v


def diff(n, v):
    if n == v:
        return "0.00"
    if n == 0:
        return "n/a"
    return "%+.2f" % (100 * (v - n) / n)


rows, notes, zero = [], {}, 0
# node_exporter's user and nice include guest time; Vigil's do not
# (docs/metrics.md): node's guest rates are subtracted from its user and
# nice (by mode) and from its busy time (by cpu).
guest = {}
for w in windows:
    for by in ("mode", "cpu"):
        guest[by, w] = query(keyed("sum by (%s) (rate(node_cpu_guest_seconds_total[%ds]))" % (by, w), by))
for title, unit, nexpr, nkey, vexpr, vkey, windowed in pairs:
    for w in (windows if windowed else [None]):
        ws = "%ds" % w if w else ""
        n = query(keyed(nexpr.replace("{w}", ws), nkey))
        v = query(keyed(vexpr.replace("{w}", ws), vkey))
        if title.startswith("cpu"):
            for k, g in guest[nkey, w].items():
                if k in n:
                    n[k] -= g
        for side, mine, other in (("node", n, v), ("vigil", v, n)):
            for k in sorted(set(mine) - set(other)):
                why = by_design(title, side, k)
                what = "only in %s: %s" % ("node_exporter" if side == "node" else "vigil", k)
                notes.setdefault((what, why or "NOT by design: look into it"), set()).add(title)
        for k in sorted(set(n) & set(v)):
            if n[k] == 0 and v[k] == 0 and windowed:
                zero += 1
                continue
            name = title + (" {%s}" % k if k else "") + (" (%s)" % unit if unit else "")
            rows.append((name, wname(w) if w else "end", fmt(n[k]), fmt(v[k]), diff(n[k], v[k])))

print(open(header).read().rstrip())
print()
print("| metric | window | node_exporter | vigil | vigil vs node % |")
print("|---|---|---:|---:|---:|")
for r in rows:
    print("| %s | %s | %s | %s | %s |" % r)
print()
print("Vigil's counters are those of its latest host tick, up to one"
      " telemetry.host.interval older than node_exporter's, which reads at"
      " the scrape: a rate over a window W can differ by about interval / W"
      " of the rate, more when the load changed within an interval at either"
      " end of the window (docs/metrics.md, \"Freshness rules\"). Gauges are"
      " compared as their average over the window, or at the end (\"end\").")
print()
print("Left out or adjusted (docs/metrics.md says these differ by design):")
print("- guest time: node_exporter's cpu user and nice include it, Vigil's do not;"
      " node_exporter's guest rates (node_cpu_guest_seconds_total) are subtracted"
      " from its user and nice, and from its busy time, above.")
print("- cpu busy: every mode but idle and iowait, per logical CPU.")
print("- partitions: neither lists them (their I/O is in their disk's).")
print("- the loopback interface is compared: both were told to include it.")
if zero:
    print("- %d windowed series that were 0 on both sides (idle interfaces and devices)." % zero)
for (what, why), titles in sorted(notes.items()):
    print("- %s (%s): %s" % (what, ", ".join(sorted(titles)), why))
PY
