"""A loopback stand-in for the Hugging Face hub API: what huggingface_hub 2.4's `whoami`,
`create_repo` and `create_commit` call, answered from memory.

    server = HubServer(token="hf_...", user="ada").start()
    HfApi(endpoint=server.url).whoami()      # or: skillmix push CONFIG --endpoint server.url
    server.repos     # {("model" | "dataset", "ns/name"): {"private": bool, "files": {path: bytes}}}
    server.requests  # [(method, path)] of every request received
    server.unknown   # requests no route answered (a client change would show here)
    server.stop()

Routes: GET /api/whoami-v2 (401 for any other token); POST /api/repos/create (409 when it
exists); POST /api/validate-yaml (400 when the front matter is not YAML); POST
/api/{models,datasets}/{ns}/{name}/preupload/{rev} (uploadMode "regular" for every file, so no
LFS or xet transfer, and the git oid of a file already there so unchanged files are skipped);
POST .../commit/{rev} (the NDJSON body: a header line, then files with base64 content);
GET /api/{models,datasets}/{ns}/{name}[/revision/{rev}] (the repo's last commit).
Every route but whoami wants the token as well.
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import yaml

_REPO = r"/api/(?P<type>models|datasets)/(?P<repo>[^/]+/[^/]+)"


def git_oid(content: bytes) -> str:
    """The git blob sha1 the hub reports for a regular file."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class HubServer:
    """The stand-in; `repos`, `requests` and `unknown` are what a test reads."""

    def __init__(self, token: str, user: str = "ada"):
        self.token, self.user = token, user
        self.repos: dict[tuple[str, str], dict] = {}
        self.requests: list[tuple[str, str]] = []
        self.unknown: list[tuple[str, str]] = []
        self.commits = 0
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def start(self) -> "HubServer":
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def files(self, repo_type: str, repo_id: str) -> dict[str, bytes]:
        return self.repos[(repo_type, repo_id)]["files"]

    # -- routes: each returns (status, JSON body) --------------------------------------------
    def whoami(self, _body, _m):
        return 200, {"type": "user", "name": self.user, "fullname": self.user,
                     "orgs": [], "auth": {"type": "access_token",
                                          "accessToken": {"displayName": "test", "role": "write"}}}

    def create(self, body, _m):
        body = json.loads(body)
        repo_type = {"dataset": "dataset", None: "model", "model": "model"}[body.get("type")]
        repo_id = f"{body.get('organization') or self.user}/{body['name']}"
        key = (repo_type, repo_id)
        prefix = "datasets/" if repo_type == "dataset" else ""
        if key in self.repos:
            return 409, {"error": "You already created this repo", "url": f"{self.url}/{prefix}{repo_id}"}
        self.repos[key] = {"private": body.get("visibility") == "private", "files": {},
                           "sha": "0" * 40}
        return 200, {"url": f"{self.url}/{prefix}{repo_id}", "name": repo_id}

    def validate_yaml(self, body, _m):
        content = json.loads(body)["content"]
        if content.startswith("---\n"):
            try:
                yaml.safe_load(content.split("---\n")[1])
            except yaml.YAMLError as exc:
                return 400, {"errors": [{"message": str(exc)}]}
        return 200, {"errors": [], "warnings": []}

    def _repo(self, m):
        return self.repos.get(({"models": "model", "datasets": "dataset"}[m["type"]], m["repo"]))

    def preupload(self, body, m):
        repo = self._repo(m)
        if repo is None:
            return 404, {"error": "Repository not found"}
        files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                  "oid": git_oid(repo["files"][f["path"]]) if f["path"] in repo["files"] else None}
                 for f in json.loads(body)["files"]]
        return 200, {"files": files, "commitOid": repo["sha"]}

    def commit(self, body, m):
        repo = self._repo(m)
        if repo is None:
            return 404, {"error": "Repository not found"}
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        if not lines or lines[0]["key"] != "header":
            return 400, {"error": "the first line must be the header"}
        for line in lines[1:]:
            if line["key"] != "file" or line["value"].get("encoding") != "base64":
                return 400, {"error": f"unsupported operation {line['key']}"}
            repo["files"][line["value"]["path"]] = base64.b64decode(line["value"]["content"])
        self.commits += 1
        repo["sha"] = hashlib.sha1(f"{m['repo']}{self.commits}".encode()).hexdigest()
        return 200, {"commitUrl": f"{self.url}/{m['repo']}/commit/{repo['sha']}",
                     "commitOid": repo["sha"], "pullRequestUrl": None}

    def info(self, _body, m):
        repo = self._repo(m)
        if repo is None:
            return 404, {"error": "Repository not found"}
        return 200, {"id": m["repo"], "sha": repo["sha"], "private": repo["private"],
                     "siblings": [{"rfilename": p} for p in sorted(repo["files"])]}

    ROUTES = [("GET", r"/api/whoami-v2", "whoami"),
              ("POST", r"/api/repos/create", "create"),
              ("POST", r"/api/validate-yaml", "validate_yaml"),
              ("POST", _REPO + r"/preupload/[^/]+", "preupload"),
              ("POST", _REPO + r"/commit/[^/]+", "commit"),
              ("GET", _REPO + r"(/revision/[^/]+)?", "info")]


def _handler(server: HubServer):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):     # quiet test output
            pass

        def _serve(self, method: str):
            path = self.path.split("?", 1)[0]
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with server._lock:
                server.requests.append((method, path))
                for verb, pattern, name in HubServer.ROUTES:
                    m = re.fullmatch(pattern, path)
                    if verb == method and m:
                        if self.headers.get("Authorization") != f"Bearer {server.token}":
                            status, reply = 401, {"error": "Invalid credentials in Authorization header"}
                        else:
                            status, reply = getattr(server, name)(body, m.groupdict())
                        break
                else:
                    server.unknown.append((method, path))
                    status, reply = 404, {"error": f"no route {method} {path}"}
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status >= 400:
                self.send_header("X-Error-Message", reply.get("error", ""))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self._serve("GET")

        def do_POST(self):
            self._serve("POST")

    return Handler
