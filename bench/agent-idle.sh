#!/bin/sh
# agent-idle.sh: the agent's cost at rest on an inference host. Runs
# `vigil agent` with 8 simulated GPUs (go-nvml's mock; no GPU needed) sampled
# every second (the host collector at its default 5s), scrapes /metrics every second
# for DURATION seconds (default 60), and prints peak RSS (VmHWM), CPU seconds
# used during the run and that as a share of one core.
#
#   sh bench/agent-idle.sh            # 60 s
#   DURATION=20 sh bench/agent-idle.sh
set -eu

DURATION=${DURATION:-60}
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d)
pid=""
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

echo "building vigil..." >&2
(cd "$root" && CGO_CFLAGS="-O2 -g -Wno-deprecated-declarations" go build -trimpath -tags grpcnotrace -o "$tmp/vigil" ./cmd/vigil)

cat > "$tmp/vigil.yaml" <<YAML
data_dir: $tmp/data
log_format: json
log_level: warn
api:
  addr: 127.0.0.1:0
telemetry:
  gpu:
    simulate: 8
    interval: 1s
YAML

"$tmp/vigil" agent -config "$tmp/vigil.yaml" >"$tmp/out" 2>"$tmp/err" &
pid=$!
addr=""
i=0
while [ -z "$addr" ] && [ $i -lt 100 ]; do
	addr=$(sed -n 's#.*API: http://\(127\.0\.0\.1:[0-9]*\).*#\1#p' "$tmp/out" | head -1)
	i=$((i + 1))
	sleep 0.1
done
[ -n "$addr" ] || { echo "agent did not start:" >&2; cat "$tmp/err" >&2; exit 1; }

clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
# Let start-up (NVML mock set-up, store open) settle before measuring.
sleep 3
start=$(cpu_ticks)
t0=$(date +%s.%N)
scrapes=0
bytes=0
end=$(( $(date +%s) + DURATION ))
while [ "$(date +%s)" -lt "$end" ]; do
	n=$(curl -sf "http://$addr/metrics" | wc -c)
	bytes=$n
	scrapes=$((scrapes + 1))
	sleep 1
done
t1=$(date +%s.%N)
stop=$(cpu_ticks)
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
gpus=$(curl -sf "http://$addr/v1/gpus" | grep -o '"uuid"' | wc -l)

awk -v s="$start" -v e="$stop" -v clk="$clk" -v t0="$t0" -v t1="$t1" -v hwm="$hwm" -v rss="$rss" \
	-v scrapes="$scrapes" -v bytes="$bytes" -v gpus="$gpus" 'BEGIN {
	cpu = (e - s) / clk; wall = t1 - t0
	printf "simulated GPUs:     %d (1s sampling), host collector at its default 5s\n", gpus
	printf "scrapes of /metrics: %d (last %d bytes)\n", scrapes, bytes
	printf "wall time:          %.1f s\n", wall
	printf "CPU time:           %.2f s (%.2f%% of one core)\n", cpu, 100 * cpu / wall
	printf "RSS peak (VmHWM):   %.1f MB\n", hwm / 1024
	printf "RSS now (VmRSS):    %.1f MB\n", rss / 1024
}'
