"""The Detector service's handling of a method's parameters: defaults
filled in from describe(), unknown names and wrong types refused by name."""

import unittest

import vigil_plugin as vp
from vigil_plugin import _server
from vigil.plugin.v1 import detector_pb2


class _Abort(Exception):
    pass


class _Context:
    """The part of a grpc.ServicerContext the Detector service uses."""

    def __init__(self):
        self.trailers = ()
        self.details = None

    def add_callback(self, fn):
        return True

    def is_active(self):
        return True

    def time_remaining(self):
        return None

    def set_trailing_metadata(self, md):
        self.trailers = tuple(md)

    def abort(self, code, details):
        self.details = details
        raise _Abort(details)


class _Scaled(vp.Detector):
    def __init__(self):
        self.seen = None

    def describe(self):
        return [vp.Method("scaled", params=[vp.Param("scale", default=1.0), vp.Param("robust", default=False),
                                            vp.Param("label")]),
                vp.Method("plain")]

    def detect(self, req):
        self.seen = dict(req.params)
        return vp.Result(statistic=0.1, threshold=0.5, drifted=False)


def _chunks(method, params=None):
    h = detector_pb2.DetectHeader(method=method, data_type=detector_pb2.NUMERIC)
    if params is not None:
        h.params.update(params)
    yield detector_pb2.DetectChunk(header=h)
    for which in (detector_pb2.SampleChunk.REFERENCE, detector_pb2.SampleChunk.CURRENT):
        yield detector_pb2.DetectChunk(sample=detector_pb2.SampleChunk(which=which, numeric=[1.0, 2.0]))


class DetectParams(unittest.TestCase):
    def detect(self, method, params=None):
        det = _Scaled()
        svc = _server._DetectorServices(vp.Info("scaled", "1.0.0"), det)
        ctx = _Context()
        handler = _server._typed("Detect", svc.Detect)
        try:
            handler(_chunks(method, params), ctx)
        except _Abort:
            return det.seen, dict(ctx.trailers), ctx.details
        return det.seen, None, None

    def test_defaults_filled(self):
        seen, _, _ = self.detect("scaled")
        self.assertEqual(seen, {"scale": 1.0, "robust": False})

    def test_given_overrides_default(self):
        seen, _, _ = self.detect("scaled", {"scale": 2.0, "label": "x"})
        self.assertEqual(seen, {"scale": 2.0, "robust": False, "label": "x"})

    def test_unknown_parameter(self):
        seen, trailers, details = self.detect("scaled", {"scael": 2.0})
        self.assertIsNone(seen)
        self.assertEqual(trailers.get("vigil-error-field"), "params.scael")
        self.assertEqual(details, "unknown parameter for method scaled (it takes parameters: scale, robust, label)")

    def test_method_without_parameters(self):
        _, trailers, details = self.detect("plain", {"bins": 3.0})
        self.assertEqual(trailers.get("vigil-error-field"), "params.bins")
        self.assertEqual(details, "unknown parameter for method plain (it takes no parameters)")

    def test_wrong_types(self):
        _, trailers, details = self.detect("scaled", {"scale": "big"})
        self.assertEqual((trailers.get("vigil-error-field"), details), ("params.scale", 'must be a number, not "big"'))
        _, trailers, details = self.detect("scaled", {"robust": 1.0})
        self.assertEqual((trailers.get("vigil-error-field"), details), ("params.robust", "must be true or false, not 1.0"))
        _, trailers, details = self.detect("scaled", {"scale": True})
        self.assertEqual((trailers.get("vigil-error-field"), details), ("params.scale", "must be a number, not true"))


class _BadDetails(vp.Detector):
    def __init__(self, details):
        self.details = details

    def describe(self):
        return [vp.Method("m")]

    def detect(self, req):
        return vp.Result(statistic=0.1, threshold=0.5, drifted=False, details=self.details)


class DetectDetails(unittest.TestCase):
    def detect(self, details):
        svc = _server._DetectorServices(vp.Info("d", "1.0.0"), _BadDetails(details))
        ctx = _Context()
        try:
            _server._typed("Detect", svc.Detect)(_chunks("m"), ctx)
        except _Abort:
            return dict(ctx.trailers).get("vigil-error-class"), ctx.details
        return None, None

    def test_named(self):
        tail = "; details hold numbers, strings, bools, None, lists and dicts with string keys"
        pre = "the detector produced an invalid result: "
        self.assertEqual(self.detect({"bins": [1, {2, 3}]}), ("internal", pre + "details.bins[1] is a set" + tail))
        self.assertEqual(self.detect({"edges": {3: "x"}}),
                         ("internal", pre + "details.edges has the key 3, a int (keys must be strings)" + tail))

    def test_json_like(self):
        self.assertEqual(self.detect({"a": [1, 2.5, None, True, "x", {"b": []}], "c": (1, 2)}), (None, None))


if __name__ == "__main__":
    unittest.main()
