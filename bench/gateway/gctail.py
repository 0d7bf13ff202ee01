"""gctail.py DIR: how vigil's slowest requests line up with garbage
collection, for bench/gateway-gctail.sh. Reads DIR/gc.log (the agent's
stderr, each line prefixed with the Unix time it was read: GODEBUG=gctrace
lines of the agent, and the plugin's as JSON log records) and DIR/vigil.csv
(vegeta's per-request results). A gctrace line is printed when its cycle
ends; the cycle is taken to span its wall-clock phases before that."""
import csv
import json
import re
import sys

d = sys.argv[1]
cycle = re.compile(r"gc \d+ @[\d.]+s \d+%: ([\d.]+)\+([\d.]+)\+([\d.]+) ms clock")


def window(ts, text):
    m = cycle.search(text)
    if not m:
        return None
    return (ts - sum(float(x) for x in m.groups()) / 1000, ts)


agent, plugin = [], []
for line in open(f"{d}/gc.log"):
    ts, _, rest = line.partition(" ")
    ts = float(ts)
    if rest.startswith("{"):
        try:
            w = window(ts, json.loads(rest).get("msg", ""))
        except ValueError:
            continue
        if w:
            plugin.append(w)
    else:
        w = window(ts, rest)
        if w:
            agent.append(w)

rows = [(int(r[0]) / 1e9, int(r[2]) / 1e9) for r in csv.reader(open(f"{d}/vigil.csv"))]
lats = sorted(l for _, l in rows)
q = lambda xs, p: xs[int(len(xs) * p)]
p99 = q(lats, 0.99)
t0, t1 = rows[0][0], max(t + l for t, l in rows)


def overlaps(t, l, ws):
    return any(a < t + l and b > t for a, b in ws)


slow = [(t, l) for t, l in rows if l >= p99]
print(f"{len(rows)} requests, p50 {q(lats, 0.5) * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms")
for name, ws in (("agent", agent), ("plugin", plugin)):
    inside = [(max(a, t0), min(b, t1)) for a, b in ws if a < t1 and b > t0]
    share = sum(b - a for a, b in inside) / (t1 - t0)
    hit = sum(overlaps(t, l, ws) for t, l in slow) / len(slow)
    print(f"{name} GC: {len(inside)} cycles, {share * 100:.2f} % of the time; "
          f"requests at or above p99 overlapping one: {hit * 100:.1f} %")
clear = sorted(l for t, l in rows if not overlaps(t, l, agent + plugin))
print(f"p99 of the requests that overlap no GC cycle: {q(clear, 0.99) * 1e3:.2f} ms "
      f"({len(rows) - len(clear)} left out)")
