"""Read the settings a plugin's configure() receives, and report every
problem as a FieldError naming its key, worded as the Go SDK's
sdk/providerconf words it (the agent shows both the same way).

It is written for LLM providers run by the agent's gateway, whose
configure() gets a gateway.providers entry (docs/plugins.md, "Settings a
provider instance receives"): Reader.http() reads the settings every HTTP
upstream shares (base_url, api_key / api_key_file / api_key_env, timeout,
max_concurrency, headers) in one call. The typed getters suit any plugin's
configuration::

    from vigil_plugin import providerconf

    def configure(self, config):
        r = providerconf.Reader(config)
        r.known(*providerconf.HTTP_KEYS, "organization")
        h = r.http(providerconf.HTTP(base_url="https://api.example.com/v1"),
                   reserved_headers=("Authorization", "Content-Type"))
        org = r.string("organization")
        if r.errors:
            return r.errors
        self.base_url, self.timeout = h.base_url, h.timeout   # seconds
        return []

A Reader gathers problems instead of stopping at the first. A key that is
absent or None (null) is not set: its getter returns None and records
nothing, as it does for a value it rejects; check r.errors before using
the result. Durations are returned in seconds (float), as Python's
timeouts take them.
"""

import decimal
import math
import os
import re
from urllib.parse import urlsplit

from ._errors import FieldError

__all__ = ["Reader", "HTTP", "HTTP_KEYS", "MAX_CONCURRENCY_LIMIT"]

# The keys Reader.http() reads, for known() together with the plugin's own.
HTTP_KEYS = ("base_url", "api_key", "api_key_file", "api_key_env", "timeout", "max_concurrency", "headers")

# The largest max_concurrency Reader.http() accepts.
MAX_CONCURRENCY_LIMIT = 100000


class HTTP:
    """The settings of an HTTP upstream that every gateway.providers entry
    may carry. base_url has no trailing slash; api_key is "" when none is
    configured; timeout is in seconds."""

    def __init__(self, base_url="", api_key="", timeout=60.0, max_concurrency=64, headers=None):
        self.base_url = base_url
        self.api_key = api_key
        self.timeout = timeout
        self.max_concurrency = max_concurrency
        self.headers = dict(headers or {})

    def __eq__(self, other):
        return isinstance(other, HTTP) and vars(self) == vars(other)

    def __repr__(self):
        return "HTTP(%s)" % ", ".join("%s=%r" % kv for kv in sorted(vars(self).items()))


class Reader:
    """Reads one configuration dict and records its problems in errors (a
    list of FieldError, what configure() returns: empty accepts)."""

    def __init__(self, config, lookup_env=None):
        self._m = config or {}
        # Looks up the variable api_key_env names in the plugin's own
        # environment; returns None when it is not set.
        self.lookup_env = lookup_env or os.environ.get
        self.errors = []

    def bad(self, key, message):
        """Record a problem of the plugin's own with key."""
        self.errors.append(FieldError(key, message))

    def known(self, *known):
        """Record every key that is not one of known, as
        "unknown key (known: a, b)" in the order given."""
        for k in sorted(self._m):
            if k not in known:
                self.bad(k, "unknown key (known: %s)" % ", ".join(known))

    def _value(self, key):
        return self._m.get(key)

    def string(self, key):
        """A str; another type records "must be a string, got TYPE"."""
        v = self._value(key)
        if v is None:
            return None
        if not isinstance(v, str):
            self.bad(key, "must be a string, got %s" % _type_name(v))
            return None
        return v

    def int(self, key, lo, hi):
        """A whole number from lo to hi (an int); anything else records
        "must be a whole number from LO to HI, got VALUE"."""
        v = self._value(key)
        if v is None:
            return None
        if not _is_number(v) or not math.isfinite(v) or v != int(v) or not lo <= v <= hi:
            self.bad(key, "must be a whole number from %d to %d, got %s" % (lo, hi, _show(v)))
            return None
        return int(v)

    def number(self, key, lo, hi):
        """A number from lo to hi (a float); anything else records
        "must be a number from LO to HI, got VALUE"."""
        v = self._value(key)
        if v is None:
            return None
        if not _is_number(v) or not lo <= v <= hi:
            self.bad(key, "must be a number from %s to %s, got %s" % (_go_number(lo), _go_number(hi), _show(v)))
            return None
        return float(v)

    def bool(self, key):
        """True or False; anything else records
        "must be true or false, got VALUE"."""
        v = self._value(key)
        if v is None:
            return None
        if not isinstance(v, bool):
            self.bad(key, "must be true or false, got %s" % _show(v))
            return None
        return v

    def duration(self, key):
        """A positive Go duration string such as "60s" or "1m30s" (the agent
        sends gateway.providers[].timeout as "1m0s"), in seconds. A string
        that is not one records '"TEXT" is not a positive duration such as
        60s'; another type 'must be a duration string such as "60s", got
        VALUE'."""
        v = self._value(key)
        if v is None:
            return None
        if not isinstance(v, str):
            self.bad(key, 'must be a duration string such as "60s", got %s' % _show(v))
            return None
        secs = _duration_seconds(v)
        if secs is None or secs <= 0:
            self.bad(key, "%s is not a positive duration such as 60s" % _quote(v))
            return None
        return secs

    def url(self, key):
        """An absolute http:// or https:// URL with a host, as written.
        Otherwise records '"TEXT" must start with http:// or https://',
        '"TEXT" has no host' or "not a URL: REASON" (the reason is
        Python's, not Go's)."""
        s = self.string(key)
        if s is None:
            return None
        try:
            if any(ord(c) < 0x20 or ord(c) == 0x7F for c in s):
                raise ValueError("invalid control character in URL")
            u = urlsplit(s)
            u.port  # noqa: B018  (raises on a bad port)
        except ValueError as e:
            self.bad(key, "not a URL: %s" % e)
            return None
        if u.scheme not in ("http", "https"):
            self.bad(key, "%s must start with http:// or https://" % _quote(s))
        elif not u.netloc:
            self.bad(key, "%s has no host" % _quote(s))
        else:
            return s
        return None

    def headers(self, key, reserved=()):
        """A dict of extra request headers. reserved are the headers the
        plugin sets itself, compared without regard to case. Problems are
        recorded per header under KEY.NAME ("is set by the plugin", "is not
        a valid header name", "must be a string, got TYPE", "value has a
        line break or NUL byte"); a value that is not a dict records "must
        be a map of header names to string values". A dict returns the
        valid headers; anything else None."""
        v = self._value(key)
        if v is None:
            return None
        if not isinstance(v, dict):
            self.bad(key, "must be a map of header names to string values")
            return None
        lower = {r.lower() for r in reserved}
        out = {}
        for k in sorted(v):
            hv = v[k]
            field = "%s.%s" % (key, k)
            if k.lower() in lower:
                self.bad(field, "is set by the plugin")
            elif not _HEADER_NAME.fullmatch(k):
                self.bad(field, "is not a valid header name")
            elif not isinstance(hv, str):
                self.bad(field, "must be a string, got %s" % _type_name(hv))
            elif any(c in hv for c in "\r\n\x00"):
                self.bad(field, "value has a line break or NUL byte")
            else:
                out[k] = hv
        return out

    def api_key(self):
        """The upstream's secret from at most one of api_key (the secret;
        the gateway puts an entry's api_key_env there), api_key_file (a
        file holding it, white space trimmed) or api_key_env (a variable of
        the plugin's own environment). "" with no problem recorded means
        none is configured."""
        key, n = "", 0
        s = self.string("api_key")
        if s:
            key, n = s.strip(), n + 1
        s = self.string("api_key_file")
        if s:
            n += 1
            try:
                with open(s, encoding="utf-8", errors="replace") as f:
                    key = f.read().strip()
                if not key:
                    self.bad("api_key_file", "%s is empty" % s)
            except OSError as e:
                self.bad("api_key_file", "cannot read the key: %s" % _os_error(s, e))
        s = self.string("api_key_env")
        if s:
            n += 1
            key = (self.lookup_env(s) or "").strip()
            if not key:
                self.bad("api_key_env", "environment variable %s is not set or empty in the plugin's environment" % s)
        if n > 1:
            self.bad("api_key", "set at most one of api_key, api_key_file and api_key_env")
        return key

    def http(self, defaults=None, reserved_headers=()):
        """Read the keys of HTTP_KEYS over defaults (an HTTP holding the
        plugin's defaults; a key not set, or set wrong, keeps its default).
        reserved_headers are the headers the plugin sets itself."""
        h = HTTP(**vars(defaults)) if defaults is not None else HTTP()
        s = self.url("base_url")
        if s is not None:
            h.base_url = s.rstrip("/")
        k = self.api_key()
        if k:
            h.api_key = k
        d = self.duration("timeout")
        if d is not None:
            h.timeout = d
        n = self.int("max_concurrency", 1, MAX_CONCURRENCY_LIMIT)
        if n is not None:
            h.max_concurrency = n
        m = self.headers("headers", reserved_headers)
        if m is not None:
            h.headers = m
        return h


# An HTTP field name: one or more token characters (RFC 9110, 5.6.2).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")

# One element of a Go duration, as time.ParseDuration takes it.
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "\u03bcs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
# time.Duration's range, in seconds.
_MAX_DURATION = (2 ** 63 - 1) / 1e9


def _duration_seconds(s):
    """The seconds of a Go duration string, or None when s is not one."""
    sign = 1.0
    if s[:1] in ("+", "-"):
        sign, s = (-1.0 if s[0] == "-" else 1.0), s[1:]
    if s == "0":
        return 0.0
    if not s:
        return None
    total, pos = 0.0, 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if not m:
            return None
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    if total > _MAX_DURATION:
        return None
    return sign * total


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _quote(s):
    """s in double quotes, as Go's %q writes printable text."""
    out = []
    for c in s:
        if c in '"\\':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append("\\x%02x" % ord(c))
        else:
            out.append(c)
    return '"' + "".join(out) + '"'


def _go_number(f):
    """A number as Go's %v writes a float64: the shortest digits that read
    back the same, in e-notation from an exponent of 6 (1e+06) or below -4."""
    f = float(f)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    if f == 0:
        return "-0" if math.copysign(1, f) < 0 else "0"
    sign, digits, exp = decimal.Decimal(repr(f)).normalize().as_tuple()
    ds = "".join(map(str, digits))
    x = len(ds) + exp - 1  # the exponent of the first digit
    neg = "-" if sign else ""
    if x < -4 or x >= 6:
        return neg + _e_notation(ds, x)
    if exp >= 0:
        return neg + ds + "0" * exp
    point = len(ds) + exp
    if point > 0:
        return neg + ds[:point] + "." + ds[point:]
    return neg + "0." + "0" * -point + ds


def _e_notation(ds, x):
    mant = ds[0] + ("." + ds[1:] if len(ds) > 1 else "")
    return "%se%s%02d" % (mant, "-" if x < 0 else "+", abs(x))


def _show(v):
    """A value the way the operator wrote it, as the Go SDK shows it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return _quote(v)
    if isinstance(v, (int, float)):
        return _go_number(v)
    return _type_name(v)


def _type_name(v):
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, (list, tuple)):
        return "a list"
    if isinstance(v, dict):
        return "a map"
    if v is None:
        return "null"
    return type(v).__name__


def _os_error(path, e):
    """An OSError worded as Go's os.ReadFile words it: "open PATH: no such
    file or directory"."""
    reason = (e.strerror or str(e))
    reason = reason[:1].lower() + reason[1:]
    op = "read" if isinstance(e, IsADirectoryError) else "open"
    return "%s %s: %s" % (op, path, reason)
