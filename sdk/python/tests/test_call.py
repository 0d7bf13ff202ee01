"""vp.Call over a stand-in for grpc's ServicerContext."""

import unittest

import vigil_plugin as vp


class _Context:
    def __init__(self, left):
        self.left = left
        self.callbacks = []

    def add_callback(self, fn):
        self.callbacks.append(fn)
        return True

    def is_active(self):
        return True

    def time_remaining(self):
        return self.left


class CallTimeout(unittest.TestCase):
    def test_smaller_of_default_and_time_left(self):
        self.assertEqual(vp.Call(_Context(5.0)).timeout(60), 5.0)
        self.assertEqual(vp.Call(_Context(90.0)).timeout(60), 60)
        self.assertEqual(vp.Call(_Context(None)).timeout(60), 60)
        self.assertEqual(vp.Call(_Context(-1.0)).timeout(60), 0.0)

    def test_no_default(self):
        # A plugin without a timeout of its own (HTTP(timeout=None)) is
        # still bounded by the agent's deadline.
        self.assertEqual(vp.Call(_Context(5.0)).timeout(None), 5.0)
        self.assertIsNone(vp.Call(_Context(None)).timeout(None))

    def test_cancelled_and_wait(self):
        c = _Context(5.0)
        call = vp.Call(c)
        self.assertFalse(call.cancelled())
        for fn in c.callbacks:
            fn()
        self.assertTrue(call.cancelled())
        self.assertTrue(call.wait(30))


if __name__ == "__main__":
    unittest.main()


class _Checking(vp.Provider):
    """configure with a Call, as a plugin that checks its key upstream."""

    def __init__(self):
        self.got = None

    def configure(self, config, ctx):
        self.got = (config, ctx.timeout(60))
        return [vp.FieldError("api_key", "refused upstream")]


class ConfigureCall(unittest.TestCase):
    def test_configure_gets_call(self):
        from google.protobuf import struct_pb2
        from vigil_plugin import _server
        from vigil.plugin.v1 import plugin_pb2

        impl = _Checking()
        svc = _server._ProviderServices(vp.Info("p", "1.0.0"), impl)
        cfg = struct_pb2.Struct()
        cfg.update({"api_key": "sk"})
        out = svc.Configure(plugin_pb2.ConfigureRequest(config=cfg), _Context(7.0))
        self.assertEqual(impl.got, ({"api_key": "sk"}, 7.0))
        self.assertEqual([(e.field, e.message) for e in out.errors], [("api_key", "refused upstream")])
