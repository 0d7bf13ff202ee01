"""Importing vigil_plugin where Debian's packages cannot be imported says
which package is missing and which interpreter ran it."""

import os
import subprocess
import sys
import unittest

SDK = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class MissingPackages(unittest.TestCase):
    def test_without_debian_packages(self):
        # -S leaves out site, and with it /usr/lib/python3/dist-packages.
        p = subprocess.run([sys.executable, "-S", "-c", "import vigil_plugin"], cwd=SDK,
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        last = p.stderr.strip().splitlines()[-1]
        self.assertTrue(last.startswith("ImportError: vigil_plugin needs the module grpc, from Debian's python3-grpcio "
                                        "(apt-get install python3-grpcio python3-protobuf python3-cryptography), "
                                        "under /usr/bin/python3; this is %s, which cannot import it: " % sys.executable),
                        p.stderr)

    def test_with_them(self):
        p = subprocess.run([sys.executable, "-c", "import vigil_plugin"], cwd=SDK,
                           capture_output=True, text=True, timeout=60)
        self.assertEqual((p.returncode, p.stderr), (0, ""))



class PrintBeforeServe(unittest.TestCase):
    """Started by the agent, a print after importing vigil_plugin (at
    module level, before serve) goes to standard error, not before the
    handshake line on standard output."""

    def run_print(self, env):
        return subprocess.run([sys.executable, "-c", "import vigil_plugin; print('loading')"], cwd=SDK,
                              capture_output=True, text=True, timeout=60, env=env)

    def test_started_by_agent(self):
        env = dict(os.environ, VIGIL_PLUGIN="7c1b0e8e-vigil-plugin-contract")
        p = self.run_print(env)
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "", "loading\n"))

    def test_imported_elsewhere(self):
        env = {k: v for k, v in os.environ.items() if k != "VIGIL_PLUGIN"}
        p = self.run_print(env)
        self.assertEqual((p.returncode, p.stdout, p.stderr), (0, "loading\n", ""))


if __name__ == "__main__":
    unittest.main()
