"""The example provider (examples/openai_compat.py) does not call its
upstream once the agent's deadline has passed: urlopen would take a
timeout of 0 as "non-blocking" and fail oddly, as class unavailable."""

import unittest

import vigil_plugin as vp
from _support import FakeContext, load_example

class DeadlinePassed(unittest.TestCase):
    def test_no_upstream_call_after_the_deadline(self):
        p = load_example().OpenAICompat()
        # Port 9 (discard): nothing listens; a call would fail unavailable.
        self.assertEqual(p.configure({"base_url": "http://127.0.0.1:9/v1"}), [])
        with self.assertRaises(vp.PluginError) as cm:
            with p._call(vp.Call(FakeContext(0.0)), "GET", "/models"):
                pass
        self.assertEqual(cm.exception.error_class, vp.TIMEOUT)
        self.assertIn("deadline passed", cm.exception.message)
        # The slot taken for the call is free again.
        self.assertTrue(p._config().slots.acquire(timeout=0))


if __name__ == "__main__":
    unittest.main()
