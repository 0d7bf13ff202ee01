"""Numerical truth for Vigil's detector plugins, computed with scipy.

Run with Debian's /usr/bin/python3 (python3-scipy). Reads a JSON file of
cases (argv[1]) and prints one JSON result per case, in order. The
pre-processing each detector documents (quantile bins, the chi-square
expected-count merge) is written here again, independently of the Go code.
"""
import json
import sys
from collections import Counter

import numpy as np
import scipy
from scipy import stats
from scipy.spatial import distance


def quantile_edges(ref, bins):
    qs = np.quantile(np.asarray(ref, dtype=float), [k / bins for k in range(1, bins)])
    edges = []
    for e in qs:
        if not edges or e > edges[-1]:
            edges.append(float(e))
    lo = float(np.min(ref))
    if edges[0] == lo:
        # ties at the minimum: values below the reference get their own bin
        edges.insert(0, float(np.nextafter(lo, -np.inf)))
    return np.asarray(edges)


def bin_counts(xs, edges):
    # bin i holds edges[i-1] < v <= edges[i]
    idx = np.searchsorted(edges, np.asarray(xs, dtype=float), side="left")
    return np.bincount(idx, minlength=len(edges) + 1).astype(float)


def category_counts(ref, cur):
    names = sorted(set(ref) | set(cur))
    cr, cc = Counter(ref), Counter(cur)
    return names, np.array([cr[n] for n in names], float), np.array([cc[n] for n in names], float)


def merge_sparse(r, c, min_expected):
    if min_expected <= 0:
        return r, c
    n = r.sum() + c.sum()
    small = min(r.sum(), c.sum())
    keep = [(r[i] + c[i]) * small / n >= min_expected for i in range(len(r))]
    kr = [r[i] for i in range(len(r)) if keep[i]]
    kc = [c[i] for i in range(len(r)) if keep[i]]
    orr = sum(r[i] for i in range(len(r)) if not keep[i])
    occ = sum(c[i] for i in range(len(r)) if not keep[i])
    if all(keep):
        return np.array(kr), np.array(kc)
    if (orr + occ) * small / n < min_expected and kr:
        best = min(range(len(kr)), key=lambda i: (kr[i] + kc[i], i))
        kr[best] += orr
        kc[best] += occ
        return np.array(kr), np.array(kc)
    return np.array(kr + [orr]), np.array(kc + [occ])


def psi(r, c, eps):
    r = r / r.sum()
    c = c / c.sum()
    r = np.where(r == 0, eps, r)
    c = np.where(c == 0, eps, c)
    return float(np.sum((c - r) * np.log(c / r)))


def run(case):
    kind = case["kind"]
    if kind == "ks":
        res = stats.ks_2samp(case["a"], case["b"], alternative="two-sided", method="auto")
        return {"statistic": float(res.statistic), "p_value": float(res.pvalue)}
    if kind == "wasserstein":
        return {"statistic": float(stats.wasserstein_distance(case["a"], case["b"]))}
    if kind == "std":
        return {"statistic": float(np.std(np.asarray(case["a"], dtype=float)))}
    if kind == "chisquare":
        _, r, c = category_counts(case["ref"], case["cur"])
        r, c = merge_sparse(r, c, case["min_expected"])
        res = stats.chi2_contingency(np.array([r, c]))
        return {"statistic": float(res[0]), "p_value": float(res[1]), "dof": int(res[2])}
    if kind == "js_cat":
        _, r, c = category_counts(case["ref"], case["cur"])
        return {"statistic": float(distance.jensenshannon(r, c, base=2))}
    if kind == "js_num":
        edges = quantile_edges(case["a"], case["bins"])
        r, c = bin_counts(case["a"], edges), bin_counts(case["b"], edges)
        return {"statistic": float(distance.jensenshannon(r, c, base=2))}
    if kind == "psi_num":
        edges = quantile_edges(case["a"], case["bins"])
        r, c = bin_counts(case["a"], edges), bin_counts(case["b"], edges)
        return {"statistic": psi(r, c, case["eps"])}
    if kind == "psi_cat":
        _, r, c = category_counts(case["ref"], case["cur"])
        return {"statistic": psi(r, c, case["eps"])}
    if kind == "kstwo_sf":
        return {"statistic": float(stats.kstwo.sf(case["x"], case["n"]))}
    if kind == "chi2_sf":
        return {"statistic": float(stats.chi2.sf(case["x"], case["df"]))}
    raise ValueError("unknown case kind %r" % kind)


def main():
    if not scipy.__version__.startswith("1.10."):
        print("scipy_truth.py: want scipy 1.10, have %s" % scipy.__version__, file=sys.stderr)
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    out = [run(c) for c in cases]
    json.dump({"scipy": scipy.__version__, "results": out}, sys.stdout)


if __name__ == "__main__":
    main()
