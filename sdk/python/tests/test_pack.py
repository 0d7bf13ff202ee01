"""pack.py refuses, before writing anything, what would fail only when the
agent starts the plugin: a missing file, a syntax error, a module beside
the plugin that it imports but that is not packed."""

import contextlib
import io
import os
import tempfile
import unittest

import pack


class Pack(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.out = os.path.join(self.dir.name, "out", "vigil-detector-x")
        os.mkdir(os.path.dirname(self.out))

    def write(self, name, text):
        path = os.path.join(self.dir.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def pack(self, *argv):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            try:
                pack.main(list(argv) + ["-o", self.out])
            except SystemExit as e:
                return str(e.code)
        return None

    def test_missing_plugin(self):
        missing = os.path.join(self.dir.name, "nope.py")
        self.assertEqual(self.pack(missing), "pack.py: %s: no such file or folder" % missing)
        self.assertFalse(os.path.exists(self.out))

    def test_syntax_error(self):
        main = self.write("main.py", "import vigil_plugin as vp\ndef f(:\n")
        msg = self.pack(main)
        self.assertIn("%s:2: SyntaxError: " % main, msg)
        self.assertFalse(os.path.exists(self.out))

    def test_unpacked_helper(self):
        helper = self.write("helper.py", "X = 1\n")
        main = self.write("main.py", "import vigil_plugin as vp\nfrom helper import X\n")
        self.assertEqual(self.pack(main), "pack.py: nothing written:\n  %s imports helper, which is beside it (%s) "
                         "but not packed: add --add %s" % (main, helper, helper))
        self.assertFalse(os.path.exists(self.out))
        self.assertIsNone(self.pack(main, "--add", helper))
        self.assertTrue(os.access(self.out, os.X_OK))

    def test_stdlib_and_sdk_imports(self):
        main = self.write("main.py", "import json, os.path\nimport vigil_plugin as vp\nfrom vigil_plugin import providerconf\n")
        self.assertIsNone(self.pack(main))
        self.assertTrue(os.path.exists(self.out))


if __name__ == "__main__":
    unittest.main()
