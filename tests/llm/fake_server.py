"""A loopback server speaking OpenAI (chat completions, files, batches) and Anthropic (messages,
message batches), with injectable faults, latency and per-request counters.

    server = FakeServer(latency=0.05, fault_rate=0.2).start()
    os.environ["OPENAI_BASE_URL"] = server.openai_url     # http://127.0.0.1:PORT/v1
    os.environ["ANTHROPIC_BASE_URL"] = server.anthropic_url
    ...
    server.success_counts   # {request fingerprint: successful completions delivered}
    server.stop()

Faults (each attempt draws one with probability `fault_rate`, or takes the next from
`fault_script`): "429" (Retry-After 0.05 s), "500" (its body echoes the Authorization header,
to test redaction), "timeout" (no answer for `timeout_sleep` s, then the connection closes),
"cut" (connection closed without a response), "malformed" (200 with a truncated JSON body);
scripted only: "400", "401", "403", "404" (a refusal no retry fixes), "echo" (a 500 whose body
echoes the key's suffix, upper-cased and URL-encoded), "429-long" (a 429 asking to wait an hour),
"null" / "no-choices" (a 200 reply with null content / no choice or content block: an empty
reply, counted as a success). `api_key` set: any other key
gets 401 on every request. `hold.clear()` stalls every reply until `hold.set()`.
A success is counted only when the reply is written to a client that is still connected.

Rate limits (`rpm=`, `tpm=`): token buckets refilled at limit/60 per second holding `burst`
seconds of it; a request that does not fit is refused with a 429 (counted in `refused`). A
request costs 1 request and its input words plus `max_tokens` tokens (OpenAI counts max_tokens
against the limit when the request arrives). With `rate_headers` (default) every completion
carries the provider's headers: OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}`
or Anthropic's `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import random
import select
import socket
import threading
import time
from collections import Counter
from email.parser import BytesParser
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("429", "500", "timeout", "cut", "malformed")


def fingerprint(body: dict) -> str:
    """Identity of a request: its JSON body, canonicalised."""
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]


def reply_text(body: dict) -> str:
    """Deterministic reply text for a request body."""
    msgs = body.get("messages") or []
    last = msgs[-1]["content"] if msgs else ""
    last = last if isinstance(last, str) else json.dumps(last)
    return f"Echo: {last[:60]} [{fingerprint(body)[:8]}]"


def _words(x) -> int:
    return len(json.dumps(x).split())


class _Listener(ThreadingHTTPServer):
    # Class attributes, because listen() runs in the constructor: a backlog set on the
    # instance afterwards is ignored, and the default of 5 drops the SYNs of a burst of new
    # connections (the client then waits ~1 s to retransmit: a server artefact, not a client cost).
    daemon_threads = True
    request_queue_size = 256


class FakeServer:
    """The loopback server; attributes are the knobs and the counters."""

    def __init__(self, *, latency: float = 0.0, fault_rate: float = 0.0, faults=FAULTS,
                 seed: int = 0, timeout_sleep: float = 1.0, batch_polls: int = 2,
                 api_key: str | None = None, rpm: float | None = None,
                 tpm: float | None = None, burst: float = 60.0, rate_headers: bool = True):
        self.latency, self.fault_rate, self.faults = latency, fault_rate, tuple(faults)
        self.limits = {"requests": rpm, "tokens": tpm}
        self.burst, self.rate_headers = burst, rate_headers
        self.levels = {k: (v / 60 * burst if v else 0.0) for k, v in self.limits.items()}
        self.level_stamp = time.monotonic()
        self.refused = 0
        self.admitted = 0
        self.timeout_sleep, self.batch_polls, self.api_key = timeout_sleep, batch_polls, api_key
        self.fault_script: list[str] = []
        self.rng = random.Random(seed)
        self.lock = threading.RLock()
        self.hold = threading.Event()
        self.hold.set()  # cleared: replies wait (in flight) until set again
        self.attempts = 0
        self.fault_counts: Counter = Counter()
        self.success_counts: Counter = Counter()
        self.paths: Counter = Counter()
        self.bodies: list[dict] = []
        self.auth_seen: set[str] = set()
        self.files: dict[str, bytes] = {}
        self.openai_batches: dict[str, dict] = {}
        self.anthropic_batches: dict[str, dict] = {}
        self.batch_creations = 0
        self._ids = itertools.count(1)
        self.httpd = None

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> "FakeServer":
        server = self

        class Handler(_Handler):
            state = server

        self.httpd = _Listener(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def stop(self) -> None:
        self.hold.set()
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_url(self) -> str:
        return self.url

    @property
    def successes(self) -> int:
        return sum(self.success_counts.values())

    def next_id(self, prefix: str) -> str:
        with self.lock:
            return f"{prefix}{next(self._ids)}"

    def draw_fault(self) -> str | None:
        with self.lock:
            self.attempts += 1
            if self.fault_script:
                fault = self.fault_script.pop(0)
            elif self.fault_rate and self.rng.random() < self.fault_rate:
                fault = self.rng.choice(self.faults)
            else:
                fault = None
            if fault:
                self.fault_counts[fault] += 1
            return fault

    def admit(self, body: dict, provider: str) -> tuple[bool, dict]:
        """Charge one request to the rate limits: (admitted, rate-limit headers)."""
        cost = {"requests": 1.0,
                "tokens": float(_words(body.get("messages")) + _words(body.get("system"))
                                + int(body.get("max_tokens") or 0))}
        with self.lock:
            now = time.monotonic()
            waits = {}
            for k, limit in self.limits.items():
                if limit:
                    cap = limit / 60 * self.burst
                    self.levels[k] = min(cap, self.levels[k] + (now - self.level_stamp) * limit / 60)
            self.level_stamp = now
            ok = all(not lim or self.levels[k] >= min(cost[k], lim / 60 * self.burst)
                     for k, lim in self.limits.items())
            for k, limit in self.limits.items():
                if limit:
                    if ok:
                        self.levels[k] -= min(cost[k], limit / 60 * self.burst)
                    cap = limit / 60 * self.burst
                    waits[k] = (cap - self.levels[k]) * 60 / limit
            if ok:
                self.admitted += 1
            else:
                self.refused += 1
            headers = {}
            if self.rate_headers:
                for k, limit in self.limits.items():
                    if not limit:
                        continue
                    rem = str(max(0, int(self.levels[k])))
                    if provider == "openai":
                        headers.update({f"x-ratelimit-limit-{k}": str(int(limit)),
                                        f"x-ratelimit-remaining-{k}": rem,
                                        f"x-ratelimit-reset-{k}": f"{waits[k]:.3f}s"})
                    else:
                        reset = time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                              time.gmtime(time.time() + waits[k]))
                        headers.update({f"anthropic-ratelimit-{k}-limit": str(int(limit)),
                                        f"anthropic-ratelimit-{k}-remaining": rem,
                                        f"anthropic-ratelimit-{k}-reset": reset})
            if not ok:
                short = [(min(cost[k], lim / 60 * self.burst) - self.levels[k]) * 60 / lim
                         for k, lim in self.limits.items() if lim]
                retry = max(0.01, max(short))
                headers.update({"retry-after": f"{retry:.3f}",
                                "retry-after-ms": str(int(retry * 1000))})
            return ok, headers

    # --- replies -------------------------------------------------------------------------
    def openai_completion(self, body: dict) -> dict:
        text = reply_text(body)
        n = int(body.get("n") or 1)
        return {"id": self.next_id("chatcmpl-"), "object": "chat.completion",
                "created": int(time.time()), "model": body.get("model", "?"),
                "choices": [{"index": i, "finish_reason": "stop", "logprobs": None,
                             "message": {"role": "assistant", "content": text + (f" #{i}" if i else "")}}
                            for i in range(n)],
                "usage": {"prompt_tokens": _words(body.get("messages")),
                          "completion_tokens": len(text.split()) * n,
                          "total_tokens": _words(body.get("messages")) + len(text.split()) * n}}

    def anthropic_message(self, body: dict) -> dict:
        text = reply_text(body)
        return {"id": self.next_id("msg_"), "type": "message", "role": "assistant",
                "model": body.get("model", "?"), "content": [{"type": "text", "text": text}],
                "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": _words(body.get("messages")) + _words(body.get("system")),
                          "output_tokens": len(text.split())}}

    def count_success(self, body: dict, n: int = 1) -> None:
        """Counted before the reply is written (and taken back if writing fails): counted after,
        a loaded machine let the client read the reply and the test read the count before this
        thread ran again (99 of 100 seen)."""
        key = fingerprint(body)
        with self.lock:
            self.success_counts[key] += n
            if self.success_counts[key] <= 0:
                del self.success_counts[key]

    def batch_object(self, b: dict) -> dict:
        return {k: v for k, v in b.items() if not k.startswith("_")}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK (~40 ms on Linux), which looked like 40 ms of client overhead per request.
    disable_nagle_algorithm = True
    state: FakeServer

    def log_message(self, *args):  # quiet
        pass

    # --- plumbing --------------------------------------------------------------------------
    def _send(self, status: int, payload, headers: dict | None = None, raw: bytes | None = None):
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _peer_alive(self) -> bool:
        sock = self.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                return sock.recv(1, socket.MSG_PEEK) != b""
            return True
        except OSError:
            return False

    def _read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _auth_ok(self) -> bool:
        s = self.state
        auth = self.headers.get("Authorization") or ""
        key = self.headers.get("x-api-key") or (auth[7:] if auth.startswith("Bearer ") else "")
        with s.lock:
            s.auth_seen.add(key)
        if s.api_key and key != s.api_key:
            self._send(401, {"error": {"type": "authentication_error", "message": "bad key"}})
            return False
        return True

    def _fault(self, fault: str) -> bool:
        """Apply a fault; True when the request is finished (no success)."""
        err = {"error": {"type": "server_error", "message": "injected"}}
        if fault == "429":
            self._send(429, {"error": {"type": "rate_limit_error", "message": "slow down"}},
                       {"Retry-After": "0.05", "retry-after-ms": "50"})
        elif fault == "500":
            echo = f"Authorization: {self.headers.get('Authorization')} x-api-key: {self.headers.get('x-api-key')}"
            err["error"]["message"] = "injected; request headers were " + echo
            self._send(500, err, {"Retry-After": "0.05", "retry-after-ms": "50"})
        elif fault == "timeout":
            time.sleep(self.state.timeout_sleep)
            self.close_connection = True
        elif fault == "cut":
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif fault == "echo":   # a 500 echoing the key the way some providers do: in part,
            from urllib.parse import quote  # upper-cased, URL-encoded
            auth = self.headers.get("Authorization") or ""
            key = self.headers.get("x-api-key") or auth.removeprefix("Bearer ")
            err["error"]["message"] = (f"bad key ...{key[-12:]} / {key.upper()} / "
                                       f"{quote(key + '+', safe='')}")
            self._send(500, err)
        elif fault in ("401", "403", "404", "400"):
            kinds = {"401": "authentication_error", "403": "permission_error",
                     "404": "not_found_error", "400": "invalid_request_error"}
            self._send(int(fault), {"error": {"type": kinds[fault], "message": f"injected {fault}"}})
        elif fault == "malformed":
            self._send(200, None, raw=b'{"id": "x", "choices": [{"message": ')
        elif fault == "429-long":
            self._send(429, {"error": {"type": "rate_limit_error", "message": "wait an hour"}},
                       {"Retry-After": "3600"})
        return True

    def _empty(self, fault: str, body: dict, make) -> None:
        """A 200 reply with null content ("null") or none at all ("no-choices")."""
        payload = make(body)
        if "choices" in payload:
            payload["choices"] = [] if fault == "no-choices" else [
                {**payload["choices"][0], "message": {"role": "assistant", "content": None}}]
        else:
            payload["content"] = [] if fault == "no-choices" else None
        self.state.count_success(body)
        try:
            self._send(200, payload)
        except OSError:
            self.state.count_success(body, -1)
            raise

    def _completion(self, body: dict, make) -> None:
        s = self.state
        rate_headers = {}
        if s.limits["requests"] or s.limits["tokens"]:
            ok, rate_headers = s.admit(body, "openai" if make == s.openai_completion
                                       else "anthropic")
            if not ok:
                self._send(429, {"error": {"type": "rate_limit_error",
                                           "message": "rate limit reached"}}, rate_headers)
                return
        fault = s.draw_fault()
        if fault in ("null", "no-choices"):
            return self._empty(fault, body, make)
        if fault:
            self._fault(fault)
            return
        if s.latency:
            time.sleep(s.latency)
        while not s.hold.wait(0.05):
            pass
        if not self._peer_alive():
            self.close_connection = True
            return
        payload = make(body)
        s.count_success(body)
        try:
            self._send(200, payload, rate_headers)
        except OSError:
            s.count_success(body, -1)
            return

    # --- routes ---------------------------------------------------------------------------
    def do_POST(self):
        s = self.state
        raw = self._read_body()
        path = self.path.split("?")[0].removeprefix("/v1")
        with s.lock:
            s.paths[("POST", path)] += 1
        if not self._auth_ok():
            return
        if path == "/files":
            return self._upload(raw)
        body = json.loads(raw or b"{}")
        with s.lock:
            s.bodies.append(body)
        if path == "/chat/completions":
            return self._completion(body, s.openai_completion)
        if path == "/messages":
            return self._completion(body, s.anthropic_message)
        if path == "/batches":
            bid = s.next_id("batch_")
            b = {"id": bid, "object": "batch", "endpoint": body["endpoint"], "errors": None,
                 "input_file_id": body["input_file_id"],
                 "completion_window": body["completion_window"], "status": "validating",
                 "output_file_id": None, "error_file_id": None, "created_at": int(time.time()),
                 "request_counts": {"total": 0, "completed": 0, "failed": 0}, "_polls": 0}
            with s.lock:
                s.openai_batches[bid] = b
                s.batch_creations += 1
            return self._send(200, s.batch_object(b))
        if path == "/messages/batches":
            bid = s.next_id("msgbatch_")
            now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            b = {"id": bid, "type": "message_batch", "processing_status": "in_progress",
                 "request_counts": {"processing": len(body["requests"]), "succeeded": 0,
                                    "errored": 0, "canceled": 0, "expired": 0},
                 "ended_at": None, "created_at": now, "expires_at": now, "archived_at": None,
                 "cancel_initiated_at": None, "results_url": None, "_polls": 0,
                 "_requests": body["requests"], "_results": None}
            with s.lock:
                s.anthropic_batches[bid] = b
                s.batch_creations += 1
            return self._send(200, s.batch_object(b))
        self._send(404, {"error": {"message": f"no route {path}"}})

    def do_GET(self):
        s = self.state
        self._read_body()
        path = self.path.split("?")[0].removeprefix("/v1")
        with s.lock:
            s.paths[("GET", path)] += 1
        if not self._auth_ok():
            return
        if path == "/stats":  # counters, for a benchmark running the server in its own process
            with s.lock:
                return self._send(200, {"refused": s.refused, "admitted": s.admitted,
                                        "successes": s.successes, "attempts": s.attempts})
        parts = path.strip("/").split("/")
        if parts[0] == "files" and len(parts) == 3 and parts[2] == "content":
            data = s.files.get(parts[1])
            return self._send(200 if data is not None else 404, None, raw=data or b"{}")
        if parts[0] == "batches" and len(parts) == 2 and parts[1] in s.openai_batches:
            return self._send(200, s.batch_object(self._advance_openai(parts[1])))
        if parts[:2] == ["messages", "batches"] and len(parts) >= 3 and parts[2] in s.anthropic_batches:
            b = self._advance_anthropic(parts[2])
            if len(parts) == 4 and parts[3] == "results":
                if b["_results"] is None:
                    return self._send(404, {"error": {"message": "not ended"}})
                raw = "".join(json.dumps(r) + "\n" for r in b["_results"]).encode()
                return self._send(200, None, raw=raw)
            return self._send(200, s.batch_object(b))
        self._send(404, {"error": {"message": f"no route {path}"}})

    # --- batches -------------------------------------------------------------------------
    def _upload(self, raw: bytes):
        s = self.state
        msg = BytesParser(policy=email_policy).parsebytes(
            b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + raw)
        data, filename = b"", "upload"
        for part in msg.iter_parts():
            if part.get_param("name", header="content-disposition") == "file":
                data = part.get_payload(decode=True)
                filename = part.get_filename() or filename
        fid = s.next_id("file-")
        with s.lock:
            s.files[fid] = data
        self._send(200, {"id": fid, "object": "file", "bytes": len(data),
                         "created_at": int(time.time()), "filename": filename,
                         "purpose": "batch", "status": "processed"})

    def _advance_openai(self, bid: str) -> dict:
        s = self.state
        with s.lock:
            b = s.openai_batches[bid]
            b["_polls"] += 1
            if b["status"] != "completed" and b["_polls"] >= s.batch_polls:
                lines = [json.loads(x) for x in s.files[b["input_file_id"]].splitlines() if x.strip()]
                out = []
                for line in lines:
                    comp = s.openai_completion(line["body"])
                    s.success_counts[fingerprint(line["body"])] += 1
                    out.append({"id": f"batch_req_{len(out)}", "custom_id": line["custom_id"],
                                "response": {"status_code": 200, "request_id": "r", "body": comp},
                                "error": None})
                fid = f"file-out-{bid}"
                s.files[fid] = "".join(json.dumps(o) + "\n" for o in out).encode()
                b.update(status="completed", output_file_id=fid,
                         request_counts={"total": len(out), "completed": len(out), "failed": 0})
            elif b["status"] == "validating":
                b["status"] = "in_progress"
            return b

    def _advance_anthropic(self, bid: str) -> dict:
        s = self.state
        with s.lock:
            b = s.anthropic_batches[bid]
            b["_polls"] += 1
            if b["_results"] is None and b["_polls"] >= s.batch_polls:
                results = []
                for req in b["_requests"]:
                    results.append({"custom_id": req["custom_id"],
                                    "result": {"type": "succeeded",
                                               "message": s.anthropic_message(req["params"])}})
                    s.success_counts[fingerprint(req["params"])] += 1
                b["_results"] = results
                b.update(processing_status="ended", ended_at=b["created_at"],
                         results_url=f"{s.url}/v1/messages/batches/{bid}/results",
                         request_counts={"processing": 0, "succeeded": len(results),
                                         "errored": 0, "canceled": 0, "expired": 0})
            return b


if __name__ == "__main__":  # python tests/llm/fake_server.py [LATENCY [RPM TPM BURST HEADERS]]
    import sys

    a = sys.argv[1:]
    num = lambda i: float(a[i]) if len(a) > i and a[i] not in ("", "0", "none") else None  # noqa: E731
    srv = FakeServer(latency=float(a[0]) if a else 0.05, rpm=num(1), tpm=num(2), burst=num(3) or 60.0,
                     rate_headers=len(a) <= 4 or a[4] != "noheaders").start()
    print(srv.url, flush=True)
    threading.Event().wait()
