"""A loopback server speaking OpenAI chat completions and Anthropic messages, whose replies come
from a script: `respond(api, body) -> str`, a pure function of the request (so a killed and a
resumed run get the same answers whatever the order of requests).

    server = ScriptedServer(respond, latency=0.01).start()
    ... base_url=server.openai_url (http://127.0.0.1:PORT/v1), server.anthropic_url ...
    server.stop()

Run as a script (`python scripted_server.py PORT_FILE`) it serves `demo_respond` until killed.
"""
from __future__ import annotations

import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class ScriptedServer:
    def __init__(self, respond, latency: float = 0.0):
        self.respond, self.latency = respond, latency
        self.calls: Counter = Counter()
        self.lock = threading.Lock()
        self.httpd = None

    def start(self) -> "ScriptedServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)))
                api = "anthropic" if self.path.rstrip("/").endswith("/messages") else "openai"
                with server.lock:
                    server.calls[api] += 1
                if server.latency:
                    time.sleep(server.latency)
                text = server.respond(api, body)
                n_in = len(json.dumps(body.get("messages")).split())
                n_out = len(text.split())
                if api == "openai":
                    payload = {"id": "chatcmpl-1", "object": "chat.completion", "created": 0,
                               "model": body.get("model"),
                               "choices": [{"index": 0, "finish_reason": "stop",
                                            "message": {"role": "assistant", "content": text}}],
                               "usage": {"prompt_tokens": n_in, "completion_tokens": n_out,
                                         "total_tokens": n_in + n_out}}
                else:
                    payload = {"id": "msg_1", "type": "message", "role": "assistant",
                               "model": body.get("model"), "stop_reason": "end_turn",
                               "stop_sequence": None,
                               "content": [{"type": "text", "text": text}],
                               "usage": {"input_tokens": n_in, "output_tokens": n_out}}
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
