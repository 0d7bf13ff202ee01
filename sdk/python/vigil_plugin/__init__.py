"""Vigil plugin SDK for Python: write a drift detector or an LLM provider,
serve it to the agent.

A plugin is a program the Vigil agent starts and talks to over gRPC through
hashicorp/go-plugin. This package does go-plugin's side of that in Python:
the handshake line on standard output, AutoMTLS (a fresh certificate per
start, client certificates required), the gRPC health service, go-plugin's
controller (so the agent can stop the plugin cleanly), the Plugin service
(Info, Configure), the Detector service with its chunked samples, the
Provider service, and typed errors. A plugin author writes only the
detector logic::

    import vigil_plugin as vp

    class MeanShift(vp.Detector):
        def describe(self):
            return [vp.Method("mean_shift", data_types=[vp.NUMERIC],
                              default_threshold=0.5)]

        def detect(self, req):
            if not req.reference:
                raise vp.FieldError("reference", "sample is empty")
            ...
            return vp.Result(statistic=s, threshold=t, drifted=s > t)

    if __name__ == "__main__":
        vp.serve_detector(vp.Info("mean-shift", "1.0.0"), MeanShift())

or the provider logic, over the contract's messages (vigil_plugin.pb,
generated from sdk/proto/vigil/plugin/v1/provider.proto)::

    class Echo(vp.Provider):
        def models(self):
            return [vp.pb.ModelInfo(id="echo", chat=True)]

        def chat(self, req):
            text = req.messages[-1].content
            return vp.pb.ChatResponse(model=req.model, content=text, finish_reason="stop")

    if __name__ == "__main__":
        vp.serve_provider(vp.Info("echo", "1.0.0"), Echo())

It needs Debian's python3-grpcio and python3-protobuf under
/usr/bin/python3, and python3-cryptography for the certificate. Log with the
logging module (to standard error): the agent copies each line into its own
log. Standard output carries the handshake: under the agent, a print after
`import vigil_plugin` goes to standard error (the log); one before it
breaks the handshake.

Deadlines and cancellation: a method that takes one more parameter than
the base class's (``def chat(self, req, ctx)``, ``def detect(self, req,
ctx)``) gets a Call: ``ctx.time_remaining()``, ``ctx.timeout(default)``
for an upstream call's own timeout, ``ctx.cancelled()``, and
``ctx.wait(seconds)``, a sleep that ends when the agent gives up.

Errors: raise PluginError(class, message) or FieldError(field, message)
(class invalid_request); the SDK sends the class in the trailers the agent
reads (vigil-error-class, vigil-retry-after-ms, vigil-error-field) with the
matching gRPC status. Any other exception reaches the agent as class
internal; the plugin keeps serving.

Configuration: vigil_plugin.providerconf reads configure()'s dict with
typed getters that return every problem as a FieldError naming its key,
worded as the Go SDK's sdk/providerconf words it, and reads the settings a
gateway.providers entry hands a provider (base_url, api_key, timeout,
max_concurrency, headers) in one call.
"""

import math
import os
import sys

# The generated protobuf modules import each other as vigil.plugin.v1.*;
# they live in _gen, which also works inside a zipapp.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_gen"))

# The SDK runs on Debian's packages; say which, and under which Python,
# rather than a bare "No module named 'grpc'" (a pyenv or venv python3
# cannot import them, and pack.py --python may name one).
for _mod, _pkg in (("grpc", "python3-grpcio"), ("google.protobuf", "python3-protobuf"),
                   ("cryptography", "python3-cryptography")):
    try:
        __import__(_mod)
    except ImportError as _e:
        raise ImportError(
            "vigil_plugin needs the module %s, from Debian's %s (apt-get install python3-grpcio "
            "python3-protobuf python3-cryptography), under /usr/bin/python3; this is %s, which cannot "
            "import it: %s" % (_mod, _pkg, sys.executable or "an unknown interpreter", _e)) from _e

from ._errors import (  # noqa: E402
    PluginError,
    FieldError,
    INVALID_REQUEST,
    RATE_LIMITED,
    OVERLOADED,
    CONTEXT_LENGTH_EXCEEDED,
    AUTH,
    QUOTA_EXHAUSTED,
    UNAVAILABLE,
    TIMEOUT,
    NOT_FOUND,
    UNSUPPORTED,
    INTERNAL,
)
from ._server import serve_detector, serve_provider, Call, CONTRACT_VERSION, CHUNK_VALUES, _invoke  # noqa: E402
from vigil.plugin.v1 import provider_pb2 as pb  # noqa: E402  (the provider contract's messages)
from . import providerconf  # noqa: E402  (typed configure() getters, as the Go SDK's sdk/providerconf)

NUMERIC = "numeric"
CATEGORICAL = "categorical"
STATISTIC_ABOVE = "statistic_above"
P_VALUE_BELOW = "p_value_below"

__all__ = [
    "Info", "Method", "Param", "DetectRequest", "Result", "Detector",
    "Provider", "pb", "serve_provider", "Call", "providerconf",
    "PluginError", "FieldError", "serve_detector", "check_finite",
    "NUMERIC", "CATEGORICAL", "STATISTIC_ABOVE", "P_VALUE_BELOW",
    "INVALID_REQUEST", "RATE_LIMITED", "OVERLOADED", "CONTEXT_LENGTH_EXCEEDED",
    "AUTH", "QUOTA_EXHAUSTED", "UNAVAILABLE", "TIMEOUT", "NOT_FOUND",
    "UNSUPPORTED", "INTERNAL", "CONTRACT_VERSION", "CHUNK_VALUES",
]


class Info:
    """What the plugin is: its name (lower-case letters, digits, '.', '_',
    '-'), its version (semver) and optional capabilities."""

    def __init__(self, name, version, capabilities=()):
        self.name = name
        self.version = version
        self.capabilities = list(capabilities)


class Param:
    """A parameter a method takes, with its default.

    The SDK fills req.params with every declared default before detect
    runs, so detect reads req.params["name"] without a fallback of its
    own. A parameter the method does not declare is refused (class
    invalid_request, field params.NAME: "unknown parameter for method M
    (it takes parameters: ...)"), and so is a value of another type than
    a number or bool default's; a default of None takes any value and is
    absent from req.params when not given."""

    def __init__(self, name, default=None, description=""):
        self.name = name
        self.default = default
        self.description = description


class Method:
    """One test a detector offers.

    data_types: NUMERIC and/or CATEGORICAL. direction: STATISTIC_ABOVE
    (drifted when the statistic exceeds the threshold) or P_VALUE_BELOW
    (drifted when the p-value is below it; set has_p_value).
    """

    def __init__(self, name, data_types=(NUMERIC,), default_threshold=0.0,
                 direction=STATISTIC_ABOVE, has_p_value=False, description="",
                 params=()):
        self.name = name
        self.data_types = list(data_types)
        self.default_threshold = default_threshold
        self.direction = direction
        self.has_p_value = has_p_value
        self.description = description
        self.params = list(params)


class DetectRequest:
    """One drift test. reference and current are lists of floats for
    numeric data and lists of str for categorical data. threshold is None
    when the agent wants the method's default. params is a dict: the
    method's Param defaults, overridden by the parameters sent (numbers
    arrive as float)."""

    def __init__(self, method, data_type, threshold, params, feature,
                 reference, current):
        self.method = method
        self.data_type = data_type
        self.threshold = threshold
        self.params = params
        self.feature = feature
        self.reference = reference
        self.current = current


class Result:
    """A test's outcome. p_value is None for methods without one; details
    is a dict of JSON-like values (numbers, strings, lists, dicts)."""

    def __init__(self, statistic, threshold, drifted, p_value=None,
                 direction=None, method=None, details=None):
        self.statistic = statistic
        self.threshold = threshold
        self.drifted = drifted
        self.p_value = p_value
        self.direction = direction
        self.method = method
        self.details = details or {}


class Detector:
    """Base class of a drift detector. Override describe and detect, and
    configure if the plugin takes settings."""

    def configure(self, config):
        """Take the plugin's section of the agent's configuration (a dict).
        Return a list of FieldError, empty to accept. The default accepts
        only an empty configuration."""
        return [FieldError(k, "this plugin takes no configuration") for k in sorted(config)]

    def describe(self):
        """Return the list of Method offered."""
        raise NotImplementedError

    def detect(self, req):
        """Run one test (a DetectRequest) and return a Result. Raise
        FieldError for bad input: an empty sample, NaN or infinity, an
        unknown method, a data type the method does not take."""
        raise NotImplementedError


class Provider:
    """Base class of an LLM provider. The requests and answers are the
    contract's protobuf messages (vigil_plugin.pb: ChatRequest, ChatResponse,
    ChatEvent, EmbedRequest, ...), whose fields follow OpenAI's chat
    completions. Override models and what the provider offers; what is not
    overridden answers with class unsupported.

    Methods run on a pool of threads, several at once: keep shared state
    behind a lock. Raise PluginError with the class that fits an
    upstream's failure (RATE_LIMITED with retry_after, OVERLOADED,
    UNAVAILABLE, TIMEOUT, AUTH, QUOTA_EXHAUSTED, CONTEXT_LENGTH_EXCEEDED,
    INVALID_REQUEST, NOT_FOUND): the agent's gateway retries, falls back
    and answers its client by that class.
    """

    def configure(self, config):
        """Take the plugin's section of the agent's configuration (a dict).
        Return a list of FieldError, empty to accept. The default accepts
        only an empty configuration. It is called after every start, first
        with what the agent's config holds."""
        return [FieldError(k, "this plugin takes no configuration") for k in sorted(config)]

    def models(self):
        """Return the list of pb.ModelInfo offered (id, context_window,
        chat, embeddings, embedding_dimensions)."""
        raise NotImplementedError

    def chat(self, req):
        """Answer a pb.ChatRequest with a pb.ChatResponse (content or
        tool_calls, finish_reason, usage)."""
        raise PluginError(UNSUPPORTED, "this provider does not offer chat")

    def chat_stream(self, req, ctx=None):
        """Yield pb.ChatEvent as the answer comes: content in delta, tool
        calls as tool_calls deltas; the last event carries finish_reason
        and usage. The default calls chat (with ctx, when chat takes it)
        and yields its answer as one delta, then the final event."""
        resp = _invoke(self.chat, ctx, req)
        first = pb.ChatEvent(id=resp.id, model=resp.model, delta=resp.content)
        for i, tc in enumerate(resp.tool_calls):
            first.tool_calls.add(index=i, id=tc.id, name=tc.name, arguments=tc.arguments)
        yield first
        last = pb.ChatEvent(finish_reason=resp.finish_reason or "stop")
        if resp.HasField("usage"):
            last.usage.CopyFrom(resp.usage)
        yield last

    def embed(self, req):
        """Answer a pb.EmbedRequest with a pb.EmbedResponse, one embedding
        per input, in order."""
        raise PluginError(UNSUPPORTED, "this provider does not offer embeddings")

    def count_tokens(self, req):
        """Count the tokens of a pb.CountTokensRequest exactly, or keep the
        default (class unsupported): the agent then estimates."""
        raise PluginError(UNSUPPORTED, "this provider cannot count tokens")


def check_finite(field, values):
    """Raise FieldError naming field[i] for the first value that is not a
    finite number, and for an empty sample."""
    if not values:
        raise FieldError(field, "sample is empty")
    for i, x in enumerate(values):
        # A string (a categorical sample handed to a numeric method) is
        # bad input too, not a TypeError that would reach the agent as
        # class internal.
        if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
            raise FieldError("%s[%d]" % (field, i),
                             "value is %r; only finite numbers are accepted" % (x,))
