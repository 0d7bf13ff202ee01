"""The provider's call pool grows to the max_concurrency its Configure
gets, so that every call the gateway lets through has a thread."""

import threading
import unittest

import vigil_plugin as vp
from vigil_plugin import _server
from vigil.plugin.v1 import plugin_pb2
from _support import FakeContext


class _Provider(vp.Provider):
    def __init__(self, errors=None):
        self.errors = errors or []

    def configure(self, config):
        return self.errors


def _configure(services, config):
    req = plugin_pb2.ConfigureRequest()
    req.config.update(config)
    return services.Configure(req, FakeContext())


class PoolGrows(unittest.TestCase):
    def setUp(self):
        self.pool = _server._Pool(max_workers=32, thread_name_prefix="test")
        self.addCleanup(self.pool.shutdown, wait=True)

    def services(self, provider):
        s = _server._ProviderServices(vp.Info(name="t", version="0.1.0"), provider)
        s.pool = self.pool
        return s

    def test_runs_max_concurrency_calls_at_once(self):
        _configure(self.services(_Provider()), {"max_concurrency": 60})
        self.assertEqual(self.pool.max_workers, 60 + _server._POOL_HEADROOM)
        # 60 calls that each wait for all the others: with the pool's
        # first 32 threads only, the barrier would break.
        barrier = threading.Barrier(60, timeout=10)
        done = [self.pool.submit(barrier.wait) for _ in range(60)]
        for f in done:
            f.result(timeout=15)

    def test_never_shrinks_and_ignores_bad_values(self):
        s = self.services(_Provider())
        for v in (8, 0, -3, True, "64", None):
            _configure(s, {"max_concurrency": v} if v is not None else {})
            self.assertEqual(self.pool.max_workers, 32, v)

    def test_rejected_configuration_leaves_pool(self):
        _configure(self.services(_Provider([("max_concurrency", "too many")])), {"max_concurrency": 500})
        self.assertEqual(self.pool.max_workers, 32)


if __name__ == "__main__":
    unittest.main()
