#!/usr/bin/python3
"""A drift detector plugin in Python, built on vigil_plugin.

Two methods on numeric data:

- mean_shift: |mean(current) - mean(reference)| in units of the reference
  standard deviation; drifted above the threshold (default 0.5).
- welch_t: Welch's t statistic of the two means with a two-sided p-value
  (normal approximation, fine for the sample sizes drift checks use);
  drifted when the p-value is below the threshold (default 0.01).

Run it from the repository (the shebang finds the SDK beside it), or pack
it into one file with `sdk/python/pack.py` for installation.
"""

import math
import os
import sys

try:
    import vigil_plugin as vp
except ImportError:  # run from the repository: the SDK is one folder up
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.realpath(__file__)), ".."))
    import vigil_plugin as vp


def mean_var(xs):
    n = len(xs)
    m = math.fsum(xs) / n
    v = math.fsum((x - m) ** 2 for x in xs) / (n - 1) if n > 1 else 0.0
    return m, v


class MeanShift(vp.Detector):
    def __init__(self):
        self.min_samples = 2

    def configure(self, config):
        errs = []
        for key, value in config.items():
            if key == "min_samples":
                if not isinstance(value, (int, float)) or value < 2 or value != int(value):
                    errs.append(vp.FieldError(key, "must be a whole number of at least 2"))
                else:
                    self.min_samples = int(value)
            else:
                errs.append(vp.FieldError(key, "unknown key"))
        return errs

    def describe(self):
        return [
            vp.Method("mean_shift", data_types=[vp.NUMERIC], default_threshold=0.5,
                      direction=vp.STATISTIC_ABOVE,
                      description="shift of the mean in reference standard deviations"),
            vp.Method("welch_t", data_types=[vp.NUMERIC], default_threshold=0.01,
                      direction=vp.P_VALUE_BELOW, has_p_value=True,
                      description="Welch's t-test of the means (normal approximation)"),
        ]

    def detect(self, req):
        if req.method not in ("mean_shift", "welch_t"):
            raise vp.FieldError("method", "unknown method %r (offered: mean_shift, welch_t)" % req.method)
        if req.data_type != vp.NUMERIC:
            raise vp.FieldError("data_type", "method %s takes numeric data" % req.method)
        vp.check_finite("reference", req.reference)
        vp.check_finite("current", req.current)
        for name, xs in (("reference", req.reference), ("current", req.current)):
            if len(xs) < self.min_samples:
                raise vp.FieldError(name, "needs at least %d values, got %d" % (self.min_samples, len(xs)))
        mr, vr = mean_var(req.reference)
        mc, vc = mean_var(req.current)
        details = {"reference_mean": mr, "current_mean": mc,
                   "n_reference": len(req.reference), "n_current": len(req.current)}
        if req.method == "mean_shift":
            sd = math.sqrt(vr) or 1.0
            stat = abs(mc - mr) / sd
            thr = 0.5 if req.threshold is None else req.threshold
            return vp.Result(statistic=stat, threshold=thr, drifted=stat > thr, details=details)
        se = math.sqrt(vr / len(req.reference) + vc / len(req.current))
        if se == 0:  # both samples constant: equal means or certainly not
            t, p = (0.0, 1.0) if mr == mc else (math.copysign(1e300, mc - mr), 0.0)
        else:
            t = (mc - mr) / se
            p = math.erfc(abs(t) / math.sqrt(2))
        thr = 0.01 if req.threshold is None else req.threshold
        return vp.Result(statistic=t, p_value=p, threshold=thr, drifted=p < thr, details=details)


if __name__ == "__main__":
    vp.serve_detector(vp.Info("py-mean-shift", "1.0.0", capabilities=["example"]), MeanShift())
