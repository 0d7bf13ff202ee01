"""go-plugin's plugin side, in Python: handshake, AutoMTLS, health,
controller, and the Plugin, Detector and Provider services.

The services are registered with generic handlers over the generated
message classes, so no generated service stubs (and no grpc_tools) are
needed at run time.
"""

import base64
import datetime
import inspect
import json
import logging
import math
import os
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from concurrent import futures

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2

from vigil.plugin.v1 import detector_pb2, plugin_pb2, provider_pb2  # noqa: E402  (from _gen)
import health_pb2  # noqa: E402  (from _gen)

from ._errors import (
    PluginError,
    FieldError,
    INTERNAL,
    TRAILER_CLASS,
)

CONTRACT_VERSION = 1
# go-plugin's own protocol version, the first field of the handshake line.
CORE_PROTOCOL_VERSION = 1
MAGIC_COOKIE_KEY = "VIGIL_PLUGIN"
MAGIC_COOKIE_VALUE = "7c1b0e8e-vigil-plugin-contract"
# The largest single message either side accepts (as the Go SDK).
MAX_MESSAGE_BYTES = 64 << 20
# How many values one Detect message carries when the host sends samples.
CHUNK_VALUES = 1 << 16
HEALTH_SERVICE = "plugin"

log = logging.getLogger("vigil_plugin")

# Started by the agent, standard output carries the handshake line only:
# keep it for that, and send the plugin's own prints (a module-level
# print after `import vigil_plugin`, too) to standard error, the log.
_handshake_out = None
if os.environ.get(MAGIC_COOKIE_KEY) == MAGIC_COOKIE_VALUE:
    _handshake_out = sys.stdout
    sys.stdout = sys.stderr

_DATA_TYPES = {"numeric": detector_pb2.NUMERIC, "categorical": detector_pb2.CATEGORICAL}
_DATA_TYPE_NAMES = {v: k for k, v in _DATA_TYPES.items()}
_DIRECTIONS = {"statistic_above": detector_pb2.STATISTIC_ABOVE, "p_value_below": detector_pb2.P_VALUE_BELOW}


class _JSONLogFormatter(logging.Formatter):
    """One JSON object a line, which the agent's log bridge reads with its
    level and message."""

    def format(self, record):
        out = {
            "@timestamp": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc).isoformat(),
            "level": record.levelname.lower().replace("warning", "warn").replace("critical", "error"),
            "msg": record.getMessage(),
            "logger": record.name,
        }
        if record.exc_info:
            out["exception"] = "".join(traceback.format_exception(*record.exc_info))
        return json.dumps(out)


def _setup_logging():
    root = logging.getLogger()
    if root.handlers:
        return  # the author configured logging
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(_JSONLogFormatter())
    root.addHandler(h)
    root.setLevel(logging.INFO)


def _server_certificate():
    """A fresh self-signed certificate for localhost, as go-plugin's own
    servers make for AutoMTLS. Returns (cert_pem, key_pem, cert_der)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Vigil plugin"),
    ])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=30))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=True, key_cert_sign=True, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return cert_pem, key_pem, cert.public_bytes(serialization.Encoding.DER)


def _abort(context, err):
    context.set_trailing_metadata(err.trailers())
    context.abort(err.code(), err.message)


def _fail(name, context, e):
    """Abort the call with e: a PluginError keeps its class, any other
    exception (a bug in the plugin) becomes class internal."""
    if isinstance(e, PluginError):
        _abort(context, e)
    log.error("plugin raised in %s", name, exc_info=e)
    context.set_trailing_metadata([(TRAILER_CLASS, INTERNAL)])
    context.abort(grpc.StatusCode.INTERNAL, "plugin raised in %s: %s: %s" % (name, type(e).__name__, e))


def _typed(name, fn):
    """Turn a handler's PluginError into a typed status and any other
    exception into class internal, so one bad request never kills the
    plugin."""

    def handler(request, context):
        try:
            return fn(request, context)
        except Exception as e:  # noqa: BLE001  (a bug in the plugin: report it, keep serving)
            _fail(name, context, e)

    return handler


def _typed_stream(name, fn):
    """_typed for a handler that yields its answers: an error raised while
    streaming ends the stream with the same typed status."""

    def handler(request, context):
        try:
            for item in fn(request, context):
                if not context.is_active():
                    return  # the agent went away (its client did)
                yield item
        except Exception as e:  # noqa: BLE001
            _fail(name, context, e)

    return handler


class Call:
    """What a handler may know about the call it serves: the agent's
    deadline and whether the agent has given up on it.

    A method that takes one more parameter than the base class's (``def
    chat(self, req, ctx)``, ``def models(self, ctx)``, ``def
    configure(self, config, ctx)``) gets one; a method
    without it is called as before. The agent gives up when its own client
    goes away or ``plugins.call_timeout`` (or the gateway's
    ``request_timeout``) passes; past that point nothing the handler
    returns reaches anyone, so stop and free the thread.
    """

    def __init__(self, context):
        self._context = context
        self._ended = threading.Event()
        if not context.add_callback(self._ended.set):
            self._ended.set()  # the call had already ended

    def time_remaining(self):
        """Seconds left before the agent's deadline (0 once it passed), or
        None when the call has no deadline."""
        left = self._context.time_remaining()
        return None if left is None else max(0.0, left)

    def timeout(self, default):
        """The smaller of default and the time left, for an upstream
        call's own timeout: ``urlopen(r, timeout=ctx.timeout(60))``. A
        default of None (no timeout of the plugin's own) gives the time
        left, None when the call has no deadline either."""
        left = self.time_remaining()
        if left is None:
            return default
        return left if default is None else min(default, left)

    def cancelled(self):
        """True once the agent has given up on the call (or it ended)."""
        return self._ended.is_set() or not self._context.is_active()

    def wait(self, seconds):
        """Sleep up to seconds, as a backoff between upstream tries; return
        True at once if the agent gives up meanwhile, False otherwise."""
        return self._ended.wait(seconds)


def _takes_ctx(fn, nargs):
    """Whether a bound method accepts a Call after its nargs arguments."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) > nargs


def _invoke(fn, ctx, *args):
    """Call fn with args, and with ctx too when fn takes it."""
    if ctx is not None and _takes_ctx(fn, len(args)):
        return fn(*args, ctx)
    return fn(*args)


def _unary(name, fn, req_type, resp_type):
    return grpc.unary_unary_rpc_method_handler(
        _typed(name, fn), request_deserializer=req_type.FromString, response_serializer=resp_type.SerializeToString)


def _struct(d):
    s = struct_pb2.Struct()
    if d:
        s.update(d)
    return s


def _not_json_like(value, path):
    """The first value under path that a google.protobuf.Struct cannot hold
    (what Result.details becomes), as "PATH is a TYPE", or None."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return None
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            bad = _not_json_like(v, "%s[%d]" % (path, i))
            if bad:
                return bad
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return "%s has the key %r, a %s (keys must be strings)" % (path, k, type(k).__name__)
            bad = _not_json_like(v, "%s.%s" % (path, k))
            if bad:
                return bad
        return None
    return "%s is a %s" % (path, type(value).__name__)


def _lists(value):
    """value with every tuple made a list, which a Struct holds."""
    if isinstance(value, (list, tuple)):
        return [_lists(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists(v) for k, v in value.items()}
    return value


def _finite(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


class _PluginServices:
    """The Plugin service every kind serves."""

    kind = ""

    def __init__(self, info, impl):
        self.info = info
        self.impl = impl
        self._with_ctx = {}

    def _call(self, method, context, *args):
        """impl.method(*args), with a Call when the method takes one (looked
        up once per method)."""
        fn = getattr(self.impl, method)
        takes = self._with_ctx.get(method)
        if takes is None:
            takes = self._with_ctx[method] = _takes_ctx(fn, len(args))
        if takes:
            return fn(*args, Call(context))
        return fn(*args)

    def Info(self, request, context):
        return plugin_pb2.InfoResponse(
            name=self.info.name, kind=self.kind, version=self.info.version,
            contract_version=CONTRACT_VERSION, capabilities=self.info.capabilities)

    # The pool the calls run on (a _Pool), set by _serve.
    pool = None

    def Configure(self, request, context):
        config = json_format.MessageToDict(request.config) if request.HasField("config") else {}
        errs = self._call("configure", context, config) or []
        if not errs:
            self._size_pool(config)
        out = plugin_pb2.ConfigureResponse()
        for e in errs:
            if isinstance(e, PluginError):
                out.errors.add(field=e.field, message=e.message)
            else:
                field, message = e
                out.errors.add(field=field, message=message)
        return out

    def _size_pool(self, config):
        """Grows the pool to the calls the agent may send at once: a
        gateway entry's max_concurrency (which the agent holds to), plus
        room for its health checks. The pool is never shrunk."""
        n = config.get("max_concurrency")
        if self.pool is not None and isinstance(n, (int, float)) and not isinstance(n, bool) and n >= 1:
            self.pool.at_least(int(n) + _POOL_HEADROOM)

    def plugin_handler(self):
        return grpc.method_handlers_generic_handler("vigil.plugin.v1.Plugin", {
            "Info": _unary("Info", self.Info, plugin_pb2.InfoRequest, plugin_pb2.InfoResponse),
            "Configure": _unary("Configure", self.Configure, plugin_pb2.ConfigureRequest, plugin_pb2.ConfigureResponse),
        })


class _DetectorServices(_PluginServices):
    kind = "detector"

    def _methods(self):
        return {m.name: m for m in self.impl.describe()}

    def Describe(self, request, context):
        out = detector_pb2.DescribeResponse()
        for m in self.impl.describe():
            mi = out.methods.add(
                name=m.name, description=m.description, has_p_value=m.has_p_value,
                default_threshold=m.default_threshold, direction=_DIRECTIONS[m.direction])
            for dt in m.data_types:
                mi.data_types.append(_DATA_TYPES[dt])
            for p in m.params:
                pi = mi.params.add(name=p.name, description=p.description)
                if p.default is not None:
                    pi.default_value.CopyFrom(_struct({"v": p.default}).fields["v"])
        return out

    def Detect(self, request_iterator, context):
        from . import DetectRequest  # the public class, defined in __init__

        header = None
        ref_num, cur_num, ref_cat, cur_cat = [], [], [], []
        for chunk in request_iterator:
            part = chunk.WhichOneof("part")
            if part == "header":
                if header is not None:
                    raise FieldError("header", "header sent twice")
                header = chunk.header
            elif part == "sample":
                if header is None:
                    raise FieldError("header", "the first message must be the header")
                sc = chunk.sample
                if sc.which == detector_pb2.SampleChunk.REFERENCE:
                    ref_num.extend(sc.numeric)
                    ref_cat.extend(sc.categorical)
                elif sc.which == detector_pb2.SampleChunk.CURRENT:
                    cur_num.extend(sc.numeric)
                    cur_cat.extend(sc.categorical)
                else:
                    raise FieldError("sample.which", "say whether a chunk is REFERENCE or CURRENT")
            else:
                raise FieldError("part", "empty message")
        if header is None:
            raise FieldError("header", "no header sent")

        dt = _DATA_TYPE_NAMES.get(header.data_type)
        if dt is None:
            dt = "categorical" if (ref_cat or cur_cat) and not (ref_num or cur_num) else "numeric"
        if dt == "numeric" and (ref_cat or cur_cat):
            raise FieldError("data_type", "numeric data type, but categorical values were sent")
        if dt == "categorical" and (ref_num or cur_num):
            raise FieldError("data_type", "categorical data type, but numeric values were sent")
        req = DetectRequest(
            method=header.method,
            data_type=dt,
            threshold=header.threshold if header.HasField("threshold") else None,
            params=json_format.MessageToDict(header.params) if header.HasField("params") else {},
            feature=header.feature,
            reference=ref_num if dt == "numeric" else ref_cat,
            current=cur_num if dt == "numeric" else cur_cat,
        )
        m = self._methods().get(req.method)
        if m is not None:
            req.params = _method_params(m, req.params)
        res = self._call("detect", context, req)

        problems = []
        if not _finite(res.statistic):
            problems.append("statistic %r" % (res.statistic,))
        if not _finite(res.threshold):
            problems.append("threshold %r" % (res.threshold,))
        if res.p_value is not None and not (_finite(res.p_value) and 0 <= res.p_value <= 1):
            problems.append("p-value %r" % (res.p_value,))
        bad = _not_json_like(res.details, "details")
        if bad:
            problems.append(bad + "; details hold numbers, strings, bools, None, lists and dicts with string keys")
        if problems:
            raise PluginError(INTERNAL, "the detector produced an invalid result: " + ", ".join(problems))
        direction = res.direction
        if direction is None:
            direction = m.direction if m else "statistic_above"
        out = detector_pb2.DetectResponse(
            method=res.method or req.method, statistic=float(res.statistic), threshold=float(res.threshold),
            direction=_DIRECTIONS[direction], drifted=bool(res.drifted), details=_struct(_lists(res.details)))
        if res.p_value is not None:
            out.p_value = float(res.p_value)
        return out

    def handlers(self):
        detect = grpc.stream_unary_rpc_method_handler(
            _typed("Detect", self.Detect),
            request_deserializer=detector_pb2.DetectChunk.FromString,
            response_serializer=detector_pb2.DetectResponse.SerializeToString)
        return [
            self.plugin_handler(),
            grpc.method_handlers_generic_handler("vigil.plugin.v1.Detector", {
                "Describe": _unary("Describe", self.Describe, detector_pb2.DescribeRequest, detector_pb2.DescribeResponse),
                "Detect": detect,
            }),
        ]


def _method_params(method, given):
    """The params of a Detect call to a method that describe() lists: each
    declared Param's default, overridden by what was given. A key the method
    does not declare, or a value of another type than its default's (a
    number, true or false), is a FieldError naming params.KEY, worded as
    Vigil's own detectors word it; so a mistyped parameter name is an error,
    not a silent default."""
    known = {p.name: p for p in method.params}
    out = {p.name: p.default for p in method.params if p.default is not None}
    for k in sorted(given):
        v = given[k]
        field = "params." + k
        p = known.get(k)
        if p is None:
            takes = "parameters: " + ", ".join(known) if known else "no parameters"
            raise FieldError(field, "unknown parameter for method %s (it takes %s)" % (method.name, takes))
        if isinstance(p.default, bool):
            if not isinstance(v, bool):
                raise FieldError(field, "must be true or false, not %s" % json.dumps(v))
        elif isinstance(p.default, (int, float)):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise FieldError(field, "must be a number, not %s" % json.dumps(v))
            if not math.isfinite(v):
                raise FieldError(field, "must be a finite number, not %r" % (v,))
        out[k] = v
    return out


def _expect(what, value, cls):
    """Check that a provider method returned the contract's message."""
    if not isinstance(value, cls):
        raise PluginError(INTERNAL, "%s returned %s; it must return vigil_plugin.pb.%s"
                          % (what, type(value).__name__, cls.__name__))
    return value


class _ProviderServices(_PluginServices):
    kind = "provider"

    def Models(self, request, context):
        models = self._call("models", context)
        if isinstance(models, provider_pb2.ModelsResponse):
            return models
        out = provider_pb2.ModelsResponse()
        for m in models:
            out.models.append(_expect("models()", m, provider_pb2.ModelInfo))
        return out

    def Chat(self, request, context):
        return _expect("chat()", self._call("chat", context, request), provider_pb2.ChatResponse)

    def ChatStream(self, request, context):
        for ev in self._call("chat_stream", context, request):
            yield _expect("chat_stream()", ev, provider_pb2.ChatEvent)

    def Embed(self, request, context):
        return _expect("embed()", self._call("embed", context, request), provider_pb2.EmbedResponse)

    def CountTokens(self, request, context):
        return _expect("count_tokens()", self._call("count_tokens", context, request), provider_pb2.CountTokensResponse)

    def handlers(self):
        stream = grpc.unary_stream_rpc_method_handler(
            _typed_stream("ChatStream", self.ChatStream),
            request_deserializer=provider_pb2.ChatRequest.FromString,
            response_serializer=provider_pb2.ChatEvent.SerializeToString)
        pb = provider_pb2
        return [
            self.plugin_handler(),
            grpc.method_handlers_generic_handler("vigil.plugin.v1.Provider", {
                "Models": _unary("Models", self.Models, pb.ModelsRequest, pb.ModelsResponse),
                "Chat": _unary("Chat", self.Chat, pb.ChatRequest, pb.ChatResponse),
                "ChatStream": stream,
                "Embed": _unary("Embed", self.Embed, pb.EmbedRequest, pb.EmbedResponse),
                "CountTokens": _unary("CountTokens", self.CountTokens, pb.CountTokensRequest, pb.CountTokensResponse),
            }),
        ]


def _health_handlers():
    def check(request, context):
        if request.service in ("", HEALTH_SERVICE):
            return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
        context.abort(grpc.StatusCode.NOT_FOUND, "unknown service %r" % request.service)

    return grpc.method_handlers_generic_handler("grpc.health.v1.Health", {
        "Check": grpc.unary_unary_rpc_method_handler(
            check, request_deserializer=health_pb2.HealthCheckRequest.FromString,
            response_serializer=health_pb2.HealthCheckResponse.SerializeToString),
    })


def _controller_handlers(stop):
    """go-plugin's GRPCController: the host calls Shutdown to stop the
    plugin; without it the host kills the plugin after two seconds."""

    def shutdown(request, context):
        threading.Thread(target=stop, name="shutdown", daemon=True).start()
        return empty_pb2.Empty()

    return grpc.method_handlers_generic_handler("plugin.GRPCController", {
        "Shutdown": grpc.unary_unary_rpc_method_handler(
            shutdown, request_deserializer=empty_pb2.Empty.FromString,
            response_serializer=empty_pb2.Empty.SerializeToString),
    })


def _refuse_unless_started_by_agent():
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        sys.stderr.write(
            "This is a Vigil plugin. It is started by the Vigil agent, not by hand.\n"
            "Register it with `vigil plugins register PATH` and configure it in the agent's config.\n")
        sys.exit(1)
    versions = [v.strip() for v in os.environ.get("PLUGIN_PROTOCOL_VERSIONS", str(CONTRACT_VERSION)).split(",")]
    if str(CONTRACT_VERSION) not in versions:
        sys.stderr.write("This plugin speaks contract version %d; the agent asked for %s.\n"
                         % (CONTRACT_VERSION, ", ".join(versions)))
        sys.exit(1)


def serve_detector(info, detector, max_workers=8):
    """Serve detector (a Detector) as a detector plugin until the agent
    stops it. Call it from the plugin's main; it does not return."""
    _serve(_DetectorServices(info, detector), max_workers)


def serve_provider(info, provider, max_workers=32):
    """Serve provider (a Provider) as a provider plugin until the agent
    stops it. Calls run on a pool of at least max_workers threads (a
    streamed chat holds one for its whole length); when the agent's
    configuration sets max_concurrency (a gateway.providers entry), the
    pool grows to it, so that every call the gateway lets through has a
    thread. Threads start only as calls need them. Call it from the
    plugin's main; it does not return."""
    _serve(_ProviderServices(info, provider), max_workers)


# Threads beyond max_concurrency: the agent's health checks, and a call
# whose answer is still being sent when the next one comes.
_POOL_HEADROOM = 4


class _Pool(futures.ThreadPoolExecutor):
    """A thread pool whose bound can be raised once the plugin knows its
    max_concurrency (from Configure, after the server has started)."""

    def at_least(self, n):
        # ThreadPoolExecutor starts a thread per submitted call while it has
        # fewer than _max_workers and none idle (CPython 3.8 and later), so
        # raising the bound is all it takes.
        with self._shutdown_lock:
            if n > self._max_workers:
                log.debug("call pool grown to %d threads", n)
                self._max_workers = n

    @property
    def max_workers(self):
        return self._max_workers


def _serve(services, max_workers):
    _refuse_unless_started_by_agent()
    _setup_logging()

    pool = _Pool(max_workers=max_workers, thread_name_prefix="rpc")
    services.pool = pool
    server = grpc.server(
        pool,
        options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                 ("grpc.max_send_message_length", MAX_MESSAGE_BYTES)])
    done = threading.Event()

    def stop():
        server.stop(grace=1).wait()
        done.set()

    for h in services.handlers():
        server.add_generic_rpc_handlers((h,))
    server.add_generic_rpc_handlers((_health_handlers(), _controller_handlers(stop)))

    sock_dir = tempfile.mkdtemp(prefix="vigil-plugin-", dir=os.environ.get("PLUGIN_UNIX_SOCKET_DIR") or None)
    sock = os.path.join(sock_dir, "plugin.sock")
    client_cert = os.environ.get("PLUGIN_CLIENT_CERT", "")
    cert_field = ""
    if client_cert:
        cert_pem, key_pem, cert_der = _server_certificate()
        creds = grpc.ssl_server_credentials([(key_pem, cert_pem)], root_certificates=client_cert.encode(),
                                            require_client_auth=True)
        bound = server.add_secure_port("unix:" + sock, creds)
        # go-plugin reads the raw leaf certificate, base64 without padding.
        cert_field = base64.b64encode(cert_der).decode().rstrip("=")
    else:
        bound = server.add_insecure_port("unix:" + sock)
    if not bound:
        sys.stderr.write("vigil_plugin: cannot listen on %s\n" % sock)
        sys.exit(1)
    server.start()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: threading.Thread(target=stop, daemon=True).start())

    line = "%d|%d|unix|%s|grpc" % (CORE_PROTOCOL_VERSION, CONTRACT_VERSION, sock)
    if cert_field:
        line += "|" + cert_field
    out = _handshake_out or sys.stdout
    out.write(line + "\n")
    out.flush()
    # Standard output has done its job; a stray print goes to the log.
    sys.stdout = sys.stderr

    while not done.wait(1):
        pass
    shutil.rmtree(sock_dir, ignore_errors=True)
    log.debug("plugin stopped")
    sys.exit(0)
