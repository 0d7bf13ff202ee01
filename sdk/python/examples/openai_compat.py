#!/usr/bin/python3
"""An LLM provider plugin in Python: chat completions (whole and streamed,
tool calls and images included) and embeddings, forwarded to an
OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp's server, TGI)
with the standard library's urllib.

It carries the contract's chat parameters that OpenAI takes:
max_completion_tokens (sent instead of max_tokens when the client used
that name), the penalties, reasoning_effort, image and file (PDF) parts
(OpenAI's content array), and openai_params (logit_bias, store,
metadata, ...: merged into the request body; a key the plugin sets
itself is refused). It declares
the matching capabilities (images, files, penalties, reasoning_effort,
openai_params), so the gateway sends it such requests. It does not carry
logprobs back, and does not declare that capability. A model's refusal
(OpenAI's message.refusal, a stream's delta.refusal) is carried back in
the contract's refusal field, not as content, so that the gateway hands
it to clients as a refusal and does not check it against the request's
response_format.

It is the Python counterpart of plugins/providers/openai, smaller: no
connection pool (one connection per call), no structured_output modes.
Pack and register it:

    /usr/bin/python3 sdk/python/pack.py sdk/python/examples/openai_compat.py -o py-openai
    vigil plugins register ./py-openai

and use it through the gateway, whose gateway.providers entries hand it
their settings (docs/plugins.md, "Settings a provider instance receives"):

    gateway:
      providers:
        - name: local-vllm
          plugin: py-openai
          base_url: http://127.0.0.1:8000/v1   # required
          api_key_file: /etc/vigil/upstream.key  # optional; sent as a bearer token
          # api_key_env: VLLM_KEY              # or: the agent hands over the key
          timeout: 60s                         # per upstream call (default 60s)
          max_concurrency: 16                  # upstream calls at once (default 64)
          headers: {OpenAI-Organization: org-1}

The same keys work under plugins.config.py-openai for the plugin run
under its own name, and api_key_env there names a variable of the
plugin's own environment (plugins.env). The settings are read with
vigil_plugin.providerconf, whose problems read as the Go plugins' do.

Models: GET {base_url}/models lists ids only, so a model whose id contains
"embed" is offered for embeddings and every other one for chat, as the Go
plugin does.
"""

import contextlib
import json
import logging
import socket
import threading
import urllib.error
import urllib.request

import vigil_plugin as vp
from vigil_plugin import providerconf

pb = vp.pb
log = logging.getLogger("openai_compat")

# The largest answer read from the upstream, as the Go plugin's limit.
MAX_BODY = 64 << 20

# The chat.completions keys this plugin sets from the contract's own
# fields: ChatRequest.openai_params may not set them.
OWN_KEYS = frozenset((
    "model", "messages", "temperature", "top_p", "max_tokens", "max_completion_tokens", "stop", "seed",
    "user", "response_format", "tools", "tool_choice", "parallel_tool_calls", "stream", "stream_options",
    "presence_penalty", "frequency_penalty", "reasoning_effort", "logprobs", "top_logprobs",
))

# What this plugin offers (docs/plugins.md#capabilities).
CAPABILITIES = ["chat", "stream", "embeddings", "tools", "images", "files", "penalties", "reasoning_effort", "openai_params"]


class Config:
    """The settings of one instance: providerconf.HTTP's, plus the slots
    that bound the calls in flight."""

    def __init__(self, http=None):
        http = http or providerconf.HTTP()
        self.base_url = http.base_url
        self.api_key = http.api_key
        self.timeout = http.timeout  # seconds
        self.max_concurrency = http.max_concurrency
        # max_concurrency's slots: held from the request until its answer
        # is read (a stream's whole length).
        self.slots = threading.BoundedSemaphore(self.max_concurrency)
        self.headers = http.headers


def parse_config(cfg):
    """Return (Config, [FieldError]): the keys a gateway.providers entry
    hands over, read with the SDK's providerconf so that problems are
    worded as the Go plugins word them."""
    r = providerconf.Reader(cfg)
    r.known(*providerconf.HTTP_KEYS)
    h = r.http(providerconf.HTTP(timeout=60.0, max_concurrency=64), reserved_headers=("Authorization", "Content-Type"))
    return Config(h), r.errors


def _upstream_error(status, body, headers):
    """The contract's error for an upstream's HTTP error answer."""
    code, param, message = "", "", body[:300].decode("utf-8", "replace")
    try:
        err = json.loads(body).get("error") or {}
        code, message = err.get("code") or "", err.get("message") or message
        param = err.get("param") if isinstance(err.get("param"), str) else ""
    except (ValueError, AttributeError):
        pass
    message = "upstream answered %d: %s" % (status, message)
    if status == 400:
        if code == "context_length_exceeded":
            return vp.PluginError(vp.CONTEXT_LENGTH_EXCEEDED, message)
        # The parameter the upstream names, as the Go plugin passes it on.
        return vp.PluginError(vp.INVALID_REQUEST, message, field=param)
    if status in (401, 403):
        return vp.PluginError(vp.AUTH, message)
    if status == 404:
        return vp.PluginError(vp.NOT_FOUND, message)
    if status == 429:
        if code == "insufficient_quota":
            return vp.PluginError(vp.QUOTA_EXHAUSTED, message)
        retry = 0.0
        try:
            retry = float(headers.get("Retry-After") or 0)
        except ValueError:
            pass
        return vp.PluginError(vp.RATE_LIMITED, message, retry_after=retry)
    if status in (408, 504):
        return vp.PluginError(vp.TIMEOUT, message)
    if status in (503, 529):
        return vp.PluginError(vp.OVERLOADED, message)
    if status >= 500:
        return vp.PluginError(vp.UNAVAILABLE, message)
    return vp.PluginError(vp.INVALID_REQUEST, message)


def _reasoning(obj):
    """The reasoning text OpenAI-compatible servers put beside the content
    (reasoning_content: DeepSeek, vLLM; reasoning: newer vLLM), if a
    string; it is passed on, never sent back upstream."""
    for key in ("reasoning_content", "reasoning"):
        v = obj.get(key)
        if isinstance(v, str) and v:
            return v
    return ""


def _content_parts(m):
    """A message's parts as OpenAI's content array."""
    parts = []
    for i, p in enumerate(m.parts):
        if p.type == "text":
            parts.append({"type": "text", "text": p.text})
        elif p.type == "image_url":
            if not p.image_url:
                raise vp.FieldError("parts[%d].image_url" % i, "an image part needs its URL")
            img = {"url": p.image_url}
            if p.image_detail:
                img["detail"] = p.image_detail
            parts.append({"type": "image_url", "image_url": img})
        elif p.type == "file":
            if not p.file_data:
                raise vp.FieldError("parts[%d].file_data" % i, "a file part needs its data")
            f = {"file_data": p.file_data}
            if p.filename:
                f["filename"] = p.filename
            parts.append({"type": "file", "file": f})
        else:
            raise vp.FieldError("parts[%d].type" % i, "part type %r is not text, image_url or file" % p.type)
    return parts


def _openai_params(req, body):
    """Merge req.openai_params (a JSON object) into body, refusing a key
    the plugin sets itself (OWN_KEYS) as invalid_request naming it."""
    if not req.openai_params:
        return
    try:
        params = json.loads(req.openai_params)
    except ValueError:
        params = None
    if not isinstance(params, dict):
        raise vp.FieldError("openai_params", "openai_params must be a JSON object")
    clash = sorted(k for k in params if k in OWN_KEYS)
    if clash:
        raise vp.FieldError(clash[0], "openai_params may not set %s: the plugin sets it from the request's own fields"
                            % ", ".join(clash))
    body.update(params)


def _request_body(req, stream):
    """The OpenAI chat.completions body for a contract ChatRequest."""
    if not req.messages:
        raise vp.FieldError("messages", "at least one message is required")
    if req.logprobs or req.HasField("top_logprobs"):
        # Not carried back: refused rather than dropped (the gateway does
        # not send them here, as the capability is not declared).
        raise vp.PluginError(vp.UNSUPPORTED, "logprobs are not supported by this plugin")
    msgs = []
    for m in req.messages:
        out = {"role": m.role, "content": _content_parts(m) if m.parts else m.content}
        if m.name:
            out["name"] = m.name
        if m.tool_calls:
            out["tool_calls"] = [{"id": tc.id, "type": "function",
                                  "function": {"name": tc.name, "arguments": tc.arguments}} for tc in m.tool_calls]
            if not m.content:
                out["content"] = None
        if m.tool_call_id:
            out["tool_call_id"] = m.tool_call_id
        msgs.append(out)
    body = {"model": req.model, "messages": msgs}
    for field in ("temperature", "top_p", "max_tokens", "seed", "presence_penalty", "frequency_penalty"):
        if req.HasField(field):
            body[field] = getattr(req, field)
    if req.HasField("max_completion_tokens"):
        # The name the client used (OpenAI's reasoning models refuse
        # max_tokens); the contract's max_tokens holds the same value.
        body.pop("max_tokens", None)
        body["max_completion_tokens"] = req.max_completion_tokens
    if req.reasoning_effort:
        body["reasoning_effort"] = req.reasoning_effort
    if req.stop:
        body["stop"] = list(req.stop)
    if req.user:
        body["user"] = req.user
    if req.response_format == "json_object":
        body["response_format"] = {"type": "json_object"}
    elif req.response_format == "json_schema":
        body["response_format"] = {"type": "json_schema", "json_schema": {
            "name": req.json_schema_name or "response", "schema": json.loads(req.json_schema or "{}"),
            "strict": req.json_schema_strict}}
    if req.tools:
        tools = []
        for t in req.tools:
            fn = {"name": t.name}
            if t.description:
                fn["description"] = t.description
            if t.parameters:
                fn["parameters"] = json.loads(t.parameters)
            if t.strict:
                fn["strict"] = True
            tools.append({"type": "function", "function": fn})
        body["tools"] = tools
    if req.tool_choice == "function":
        body["tool_choice"] = {"type": "function", "function": {"name": req.tool_choice_function}}
    elif req.tool_choice:
        body["tool_choice"] = req.tool_choice
    if req.HasField("parallel_tool_calls"):
        body["parallel_tool_calls"] = req.parallel_tool_calls
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    _openai_params(req, body)
    return body


def _usage(u, into):
    """Copy an OpenAI usage object into a contract Usage."""
    into.prompt_tokens = int(u.get("prompt_tokens") or 0)
    into.completion_tokens = int(u.get("completion_tokens") or 0)
    into.total_tokens = int(u.get("total_tokens") or into.prompt_tokens + into.completion_tokens)
    into.cached_prompt_tokens = int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
    into.reasoning_tokens = int((u.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)


class OpenAICompat(vp.Provider):
    def __init__(self):
        self._lock = threading.Lock()
        self._cfg = Config()

    def configure(self, config):
        cfg, errs = parse_config(config)
        if not errs:
            with self._lock:
                self._cfg = cfg
        return errs

    def _config(self):
        with self._lock:
            if not self._cfg.base_url:
                raise vp.FieldError("base_url", "not configured: set base_url in the gateway.providers entry")
            return self._cfg

    @contextlib.contextmanager
    def _call(self, ctx, method, path, body=None):
        """Send one request within a max_concurrency slot; yield the open
        response, or raise the contract's error. The wait for a slot and
        the upstream call end by the configured timeout or the agent's
        deadline (ctx, a vp.Call), whichever comes first."""
        cfg = self._config()
        timeout = ctx.timeout(cfg.timeout)
        if timeout <= 0:
            # (urlopen would take 0 as "non-blocking", not as "no time")
            raise vp.PluginError(vp.TIMEOUT, "the agent's deadline passed before the upstream call")
        if not cfg.slots.acquire(timeout=timeout):
            raise vp.PluginError(vp.TIMEOUT, "all %d upstream slots (max_concurrency) stayed busy for %gs" % (cfg.max_concurrency, timeout))
        timeout = ctx.timeout(cfg.timeout)  # less the wait for a slot
        if timeout <= 0:
            cfg.slots.release()
            raise vp.PluginError(vp.TIMEOUT, "the agent's deadline passed while waiting for an upstream slot")
        try:
            with self._open(cfg, timeout, method, path, body) as resp:
                yield resp
        finally:
            cfg.slots.release()

    def _open(self, cfg, timeout, method, path, body):
        data = json.dumps(body).encode() if body is not None else None
        r = urllib.request.Request(cfg.base_url + path, data=data, method=method)
        for k, v in cfg.headers.items():
            r.add_header(k, v)
        r.add_header("Accept", "application/json")
        if data is not None:
            r.add_header("Content-Type", "application/json")
        if cfg.api_key:
            r.add_header("Authorization", "Bearer " + cfg.api_key)
        try:
            return urllib.request.urlopen(r, timeout=timeout)
        except urllib.error.HTTPError as e:
            raise _upstream_error(e.code, e.read(MAX_BODY), e.headers) from None
        except (socket.timeout, TimeoutError) as e:
            raise vp.PluginError(vp.TIMEOUT, "upstream did not answer within %gs: %s" % (timeout, e)) from None
        except (urllib.error.URLError, OSError) as e:
            raise vp.PluginError(vp.UNAVAILABLE, "cannot reach the upstream: %s" % e) from None

    def _json(self, ctx, method, path, body=None):
        with self._call(ctx, method, path, body) as resp:
            raw = resp.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise vp.PluginError(vp.UNAVAILABLE, "upstream answer is larger than %d bytes" % MAX_BODY)
        try:
            return json.loads(raw)
        except ValueError as e:
            raise vp.PluginError(vp.UNAVAILABLE, "upstream answer is not JSON: %s" % e) from None

    # Each method takes ctx (a vp.Call): the agent's deadline bounds the
    # upstream call.
    def models(self, ctx):
        out = []
        for m in self._json(ctx, "GET", "/models").get("data") or []:
            mid = m.get("id") or ""
            if mid:
                embed = "embed" in mid
                out.append(pb.ModelInfo(id=mid, chat=not embed, embeddings=embed))
        return out

    def chat(self, req, ctx):
        # An assistant message's thinking_blocks (Anthropic's) are not
        # sent: _request_body builds each message from its own fields.
        ans = self._json(ctx, "POST", "/chat/completions", _request_body(req, False))
        try:
            choice = ans["choices"][0]
            msg = choice.get("message") or {}
        except (KeyError, IndexError, TypeError):
            raise vp.PluginError(vp.UNAVAILABLE, "upstream answer has no choices") from None
        out = pb.ChatResponse(id=ans.get("id") or "", model=ans.get("model") or req.model,
                              content=msg.get("content") or "", refusal=msg.get("refusal") or "",
                              finish_reason=choice.get("finish_reason") or "stop")
        for tc in msg.get("tool_calls") or []:
            fn = tc.get("function") or {}
            out.tool_calls.add(id=tc.get("id") or "", name=fn.get("name") or "", arguments=fn.get("arguments") or "")
        out.reasoning_content = _reasoning(msg)
        if ans.get("usage"):
            _usage(ans["usage"], out.usage)
        return out

    def chat_stream(self, req, ctx):
        finish, usage, done, first = "", None, False, True
        with self._call(ctx, "POST", "/chat/completions", _request_body(req, True)) as resp:
            for line in resp:
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    done = True
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    raise vp.PluginError(vp.UNAVAILABLE, "upstream sent a stream chunk that is not JSON") from None
                if chunk.get("error"):
                    raise vp.PluginError(vp.UNAVAILABLE, "upstream failed mid-stream: %s" % chunk["error"].get("message"))
                if chunk.get("usage"):
                    usage = chunk["usage"]
                for choice in chunk.get("choices") or []:
                    delta = choice.get("delta") or {}
                    ev = pb.ChatEvent(delta=delta.get("content") or "", refusal=delta.get("refusal") or "",
                                      reasoning_content=_reasoning(delta))
                    for tc in delta.get("tool_calls") or []:
                        fn = tc.get("function") or {}
                        ev.tool_calls.add(index=int(tc.get("index") or 0), id=tc.get("id") or "",
                                          name=fn.get("name") or "", arguments=fn.get("arguments") or "")
                    if first:
                        ev.id, ev.model, first = chunk.get("id") or "", chunk.get("model") or req.model, False
                    if ev.delta or ev.refusal or ev.tool_calls or ev.id or ev.reasoning_content:
                        yield ev
                    finish = choice.get("finish_reason") or finish
        if not done:
            raise vp.PluginError(vp.UNAVAILABLE, "upstream stream ended before [DONE]")
        last = pb.ChatEvent(finish_reason=finish or "stop")
        if usage:
            _usage(usage, last.usage)
        yield last

    def embed(self, req, ctx):
        if not req.input:
            raise vp.FieldError("input", "at least one input is required")
        body = {"model": req.model, "input": list(req.input)}
        if req.HasField("dimensions"):
            body["dimensions"] = req.dimensions
        ans = self._json(ctx, "POST", "/embeddings", body)
        data = sorted(ans.get("data") or [], key=lambda d: d.get("index", 0))
        if len(data) != len(req.input):
            raise vp.PluginError(vp.UNAVAILABLE, "upstream returned %d embeddings for %d inputs" % (len(data), len(req.input)))
        out = pb.EmbedResponse(model=ans.get("model") or req.model)
        for d in data:
            out.embeddings.add(values=d.get("embedding") or [])
        if ans.get("usage"):
            _usage(ans["usage"], out.usage)
        return out


if __name__ == "__main__":
    vp.serve_provider(vp.Info("py-openai", "1.3.0", capabilities=CAPABILITIES), OpenAICompat())
