"""Times the drift benchmark's computations in scipy (Debian's
/usr/bin/python3 with python3-scipy): argv[1] is the JSON list of features
the Go benchmark sends to the plugins, argv[2] the number of rounds. Prints
{"ms_per_eval": best round, "rounds": n}."""
import json
import sys
import time
from collections import Counter

import numpy as np
from scipy import stats
from scipy.spatial import distance


def psi(a, b, bins=10, eps=1e-4):
    qs = np.quantile(a, [k / bins for k in range(1, bins)])
    edges = np.unique(qs)
    r = np.bincount(np.searchsorted(edges, a, side="left"), minlength=len(edges) + 1) / len(a)
    c = np.bincount(np.searchsorted(edges, b, side="left"), minlength=len(edges) + 1) / len(b)
    r = np.where(r == 0, eps, r)
    c = np.where(c == 0, eps, c)
    return float(np.sum((c - r) * np.log(c / r)))


def evaluate(f):
    m = f["method"]
    if m == "ks":
        return stats.ks_2samp(f["ref"], f["cur"]).pvalue
    if m == "psi":
        return psi(f["ref"], f["cur"])
    if m == "wasserstein":
        return stats.wasserstein_distance(f["ref"], f["cur"]) / np.std(f["ref"])
    if m == "chisquare":
        cr, cc = Counter(f["ref"]), Counter(f["cur"])
        names = sorted(set(cr) | set(cc))
        return stats.chi2_contingency(np.array([[cr[n] for n in names], [cc[n] for n in names]])).pvalue
    raise ValueError(m)


def main():
    with open(sys.argv[1]) as fh:
        feats = json.load(fh)
    for f in feats:
        if f["method"] != "chisquare":
            f["ref"] = np.asarray(f["ref"], dtype=float)
            f["cur"] = np.asarray(f["cur"], dtype=float)
    rounds = int(sys.argv[2])
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for f in feats:
            evaluate(f)
        best = min(best, time.perf_counter() - t0)
    json.dump({"ms_per_eval": best * 1000, "rounds": rounds}, sys.stdout)


if __name__ == "__main__":
    main()
