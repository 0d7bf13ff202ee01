"""What the tests share: a stand-in for grpc's ServicerContext, and the
example provider loaded from examples/openai_compat.py."""

import importlib.util
import os

SDK = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class FakeContext:
    """The part of a grpc.ServicerContext that vp.Call uses; left is what
    time_remaining() answers (None: no deadline)."""

    def __init__(self, left=None):
        self.left = left

    def add_callback(self, fn):
        return True

    def is_active(self):
        return True

    def time_remaining(self):
        return self.left


def load_example():
    spec = importlib.util.spec_from_file_location("openai_compat", os.path.join(SDK, "examples", "openai_compat.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
