"""The example provider (examples/openai_compat.py) carries a model's
refusal (OpenAI's message.refusal, a stream's delta.refusal) in the
contract's refusal field, not as content: the gateway hands a refusal to
clients as OpenAI does and does not check it against response_format."""

import http.server
import json
import threading
import unittest

import vigil_plugin as vp
from _support import FakeContext, load_example

REFUSAL = "I can't help with that."


class _Upstream(http.server.BaseHTTPRequestHandler):
    """Answers every chat with OpenAI's refusal: content null, whole or
    streamed in two pieces."""

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body.get("stream"):
            chunks = [{"role": "assistant", "content": None, "refusal": ""}, {"refusal": "I can't "},
                      {"refusal": "help with that."}]
            lines = [{"id": "c1", "model": body["model"], "choices": [{"index": 0, "delta": d, "finish_reason": None}]}
                     for d in chunks]
            lines.append({"id": "c1", "model": body["model"], "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            lines.append({"id": "c1", "model": body["model"], "choices": [],
                          "usage": {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}})
            data = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in lines) + b"data: [DONE]\n\n"
            ctype = "text/event-stream"
        else:
            data = json.dumps({"id": "c1", "object": "chat.completion", "model": body["model"], "choices": [
                {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": None, "refusal": REFUSAL}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 6, "total_tokens": 9}}).encode()
            ctype = "application/json"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


class Refusal(unittest.TestCase):
    def setUp(self):
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()
        self.addCleanup(self.srv.server_close)
        self.addCleanup(self.srv.shutdown)
        self.p = load_example().OpenAICompat()
        self.assertEqual(self.p.configure({"base_url": "http://127.0.0.1:%d/v1" % self.srv.server_port}), [])
        self.req = vp.pb.ChatRequest(model="gpt-test", messages=[vp.pb.Message(role="user", content="help me")])

    def test_whole(self):
        out = self.p.chat(self.req, vp.Call(FakeContext(10.0)))
        self.assertEqual((out.refusal, out.content, out.finish_reason), (REFUSAL, "", "stop"))

    def test_stream(self):
        events = list(self.p.chat_stream(self.req, vp.Call(FakeContext(10.0))))
        self.assertEqual("".join(ev.refusal for ev in events), REFUSAL)
        self.assertEqual([ev.refusal for ev in events if ev.refusal], ["I can't ", "help with that."])
        self.assertEqual("".join(ev.delta for ev in events), "")
        self.assertEqual(events[-1].finish_reason, "stop")
        self.assertEqual(events[-1].usage.completion_tokens, 6)


if __name__ == "__main__":
    unittest.main()
