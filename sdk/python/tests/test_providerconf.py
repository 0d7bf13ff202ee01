"""Unit tests of vigil_plugin.providerconf. Run from sdk/python with
/usr/bin/python3 -m unittest discover -s tests (sdk/providerconf's Go tests
run them, and check the wording against the Go SDK's)."""

import os
import tempfile
import unittest

from vigil_plugin import providerconf as pc


def problems(r):
    return ["%s: %s" % (e.field, e.message) for e in r.errors]


class GetterWording(unittest.TestCase):
    def check(self, config, read, want, errs):
        r = pc.Reader(config)
        self.assertEqual(read(r), want)
        self.assertEqual(problems(r), errs)

    def test_string(self):
        self.check({"k": "v"}, lambda r: r.string("k"), "v", [])
        self.check({"k": 3.0}, lambda r: r.string("k"), None, ["k: must be a string, got a number"])
        self.check({}, lambda r: r.string("k"), None, [])
        self.check({"k": None}, lambda r: r.string("k"), None, [])

    def test_int(self):
        self.check({"k": 7.0}, lambda r: r.int("k", 1, 10), 7, [])
        self.check({"k": 2.5}, lambda r: r.int("k", 1, 10), None, ["k: must be a whole number from 1 to 10, got 2.5"])
        self.check({"k": 11.0}, lambda r: r.int("k", 1, 10), None, ["k: must be a whole number from 1 to 10, got 11"])
        self.check({"k": True}, lambda r: r.int("k", 1, 10), None, ["k: must be a whole number from 1 to 10, got true"])
        self.check({"k": "7"}, lambda r: r.int("k", 1, 10), None, ['k: must be a whole number from 1 to 10, got "7"'])

    def test_number(self):
        self.check({"k": 0.25}, lambda r: r.number("k", 0, 1), 0.25, [])
        self.check({"k": 1.5}, lambda r: r.number("k", 0, 1), None, ["k: must be a number from 0 to 1, got 1.5"])

    def test_bool(self):
        self.check({"k": False}, lambda r: r.bool("k"), False, [])
        self.check({"k": "yes"}, lambda r: r.bool("k"), None, ['k: must be true or false, got "yes"'])
        self.check({"k": [True]}, lambda r: r.bool("k"), None, ["k: must be true or false, got a list"])

    def test_duration(self):
        self.check({"k": "1m30s"}, lambda r: r.duration("k"), 90.0, [])
        self.check({"k": "250ms"}, lambda r: r.duration("k"), 0.25, [])
        self.check({"k": "1h0m0s"}, lambda r: r.duration("k"), 3600.0, [])
        for bad in ("soon", "0s", "0", "-5s", "5", "1.5.s", ""):
            self.check({"k": bad}, lambda r: r.duration("k"), None, ['k: "%s" is not a positive duration such as 60s' % bad])
        self.check({"k": 60.0}, lambda r: r.duration("k"), None, ['k: must be a duration string such as "60s", got 60'])

    def test_url(self):
        self.check({"k": "https://h/v1"}, lambda r: r.url("k"), "https://h/v1", [])
        self.check({"k": "ftp://h"}, lambda r: r.url("k"), None, ['k: "ftp://h" must start with http:// or https://'])
        self.check({"k": "http:///v1"}, lambda r: r.url("k"), None, ['k: "http:///v1" has no host'])
        self.check({"k": "http://h\x7f"}, lambda r: r.url("k"), None, ["k: not a URL: invalid control character in URL"])

    def test_headers(self):
        self.check({"h": {"X-A": "1"}}, lambda r: r.headers("h", ("Authorization",)), {"X-A": "1"}, [])
        self.check({"h": "X-A: 1"}, lambda r: r.headers("h"), None, ["h: must be a map of header names to string values"])
        self.check(
            {"h": {"authorization": "k", "Bad Name": "v", "X-Num": 1.0, "X-Split": "a\r\nb", "X-Ok": "ok"}},
            lambda r: r.headers("h", ("Authorization",)), {"X-Ok": "ok"}, [
                "h.Bad Name: is not a valid header name",
                "h.X-Num: must be a string, got a number",
                "h.X-Split: value has a line break or NUL byte",
                "h.authorization: is set by the plugin",
            ])

    def test_known_and_bad(self):
        r = pc.Reader({"b": 1.0, "zz": True, "timeot": "5s"})
        r.known("b", "timeout")
        r.bad("mode", '"medium" is not fast or slow')
        self.assertEqual(problems(r), [
            "timeot: unknown key (known: b, timeout)",
            "zz: unknown key (known: b, timeout)",
            'mode: "medium" is not fast or slow',
        ])


class APIKey(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.key_file = os.path.join(self.dir.name, "key")
        with open(self.key_file, "w") as f:
            f.write(" sk-file\n")

    def read(self, config):
        r = pc.Reader(config, lookup_env={"KEY": "sk-env", "BLANK": " "}.get)
        return r.api_key(), problems(r)

    def test_sources(self):
        self.assertEqual(self.read({}), ("", []))
        self.assertEqual(self.read({"api_key": "sk"}), ("sk", []))
        self.assertEqual(self.read({"api_key_file": self.key_file}), ("sk-file", []))
        self.assertEqual(self.read({"api_key_env": "KEY"}), ("sk-env", []))

    def test_problems(self):
        missing = os.path.join(self.dir.name, "missing")
        self.assertEqual(self.read({"api_key_file": missing})[1],
                         ["api_key_file: cannot read the key: open %s: no such file or directory" % missing])
        self.assertEqual(self.read({"api_key_env": "BLANK"})[1],
                         ["api_key_env: environment variable BLANK is not set or empty in the plugin's environment"])
        self.assertEqual(self.read({"api_key": "sk", "api_key_env": "KEY"})[1],
                         ["api_key: set at most one of api_key, api_key_file and api_key_env"])

    def test_process_environment(self):
        os.environ["PROVIDERCONF_TEST_KEY"] = "sk-process"
        self.addCleanup(os.environ.pop, "PROVIDERCONF_TEST_KEY")
        r = pc.Reader({"api_key_env": "PROVIDERCONF_TEST_KEY"})
        self.assertEqual((r.api_key(), r.errors), ("sk-process", []))


class HTTPSettings(unittest.TestCase):
    def test_over_defaults(self):
        default = pc.HTTP(base_url="https://api.example.com", timeout=60.0, max_concurrency=64)
        r = pc.Reader({})
        self.assertEqual(r.http(default), default)
        r = pc.Reader({"base_url": "http://127.0.0.1:8000/v1/", "api_key": "sk", "timeout": "5s",
                       "max_concurrency": 3.0, "headers": {"X-Org": "o"}})
        self.assertEqual(r.http(default, ("Authorization",)),
                         pc.HTTP("http://127.0.0.1:8000/v1", "sk", 5.0, 3, {"X-Org": "o"}))
        self.assertEqual(r.errors, [])
        # The defaults are not changed by reading over them.
        self.assertEqual(default, pc.HTTP(base_url="https://api.example.com", timeout=60.0, max_concurrency=64))

    def test_bad_keeps_defaults(self):
        r = pc.Reader({"base_url": "x", "timeout": 5.0, "max_concurrency": 100001.0, "headers": {"authorization": "k"}})
        h = r.http(pc.HTTP(base_url="https://d"), ("Authorization",))
        self.assertEqual((h.base_url, h.timeout, h.max_concurrency), ("https://d", 60.0, 64))
        self.assertEqual(problems(r), [
            'base_url: "x" must start with http:// or https://',
            'timeout: must be a duration string such as "60s", got 5',
            "max_concurrency: must be a whole number from 1 to 100000, got 100001",
            "headers.authorization: is set by the plugin",
        ])


if __name__ == "__main__":
    unittest.main()
