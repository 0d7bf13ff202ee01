"""The example provider (examples/openai_compat.py) does not call its
upstream once the agent's deadline has passed: urlopen would take a
timeout of 0 as "non-blocking" and fail oddly, as class unavailable."""

import importlib.util
import os
import unittest

import vigil_plugin as vp

SDK = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _example():
    spec = importlib.util.spec_from_file_location("openai_compat", os.path.join(SDK, "examples", "openai_compat.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


class _Context:
    def __init__(self, left):
        self.left = left

    def add_callback(self, fn):
        return True

    def is_active(self):
        return True

    def time_remaining(self):
        return self.left


class DeadlinePassed(unittest.TestCase):
    def test_no_upstream_call_after_the_deadline(self):
        p = _example().OpenAICompat()
        # Port 9 (discard): nothing listens; a call would fail unavailable.
        self.assertEqual(p.configure({"base_url": "http://127.0.0.1:9/v1"}), [])
        with self.assertRaises(vp.PluginError) as cm:
            with p._call(vp.Call(_Context(0.0)), "GET", "/models"):
                pass
        self.assertEqual(cm.exception.error_class, vp.TIMEOUT)
        self.assertIn("deadline passed", cm.exception.message)
        # The slot taken for the call is free again.
        self.assertTrue(p._config().slots.acquire(timeout=0))


if __name__ == "__main__":
    unittest.main()
