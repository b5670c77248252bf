"""A Hub-compatible HTTP server on loopback, for the tests: the part of the Hub API that ``huggingface_hub`` uses to
create a repo, upload a folder (preupload + NDJSON commit of regular files) and download a snapshot (repo info,
tree, resolve). Repos live in memory; ``fail_next`` makes the next N requests answer 500.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse


def git_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class Repo:
    def __init__(self, private: bool):
        self.private = private
        self.files: dict[str, bytes] = {}
        self.commits: list[str] = [hashlib.sha1(b"initial").hexdigest()]


class HubServer:
    """Start with ``HubServer().start()``; ``url`` is the endpoint to give huggingface_hub."""

    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.fail_next = 0
        self.requests: list[str] = []
        self.auth_headers: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> HubServer:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()

    # --- the API ----------------------------------------------------------------------------------------------
    def route(self, method: str, path: str, body: bytes):
        """Return ``(status, headers, body bytes)`` for a request."""
        if method == "POST" and path == "/api/repos/create":
            data = json.loads(body)
            repo_id = f"{data['organization']}/{data['name']}" if data.get("organization") else data["name"]
            if repo_id in self.repos:
                return 409, {}, json.dumps({"error": "You already created this model repo",
                                            "url": f"{self.url}/{repo_id}"}).encode()
            self.repos[repo_id] = Repo(bool(data.get("private")) or data.get("visibility") == "private")
            return 200, {}, json.dumps({"url": f"{self.url}/{repo_id}", "name": repo_id}).encode()
        if method == "POST" and path == "/api/validate-yaml":
            return 200, {}, b"{}"
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/(preupload|commit)/([^/]+)", path)
        if m and method == "POST":
            repo = self.repos.get(m.group(1))
            if repo is None:
                return 404, {"X-Error-Code": "RepoNotFound"}, b'{"error": "Repository not found"}'
            if m.group(2) == "preupload":
                files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                          "oid": git_sha1(repo.files[f["path"]]) if f["path"] in repo.files else None}
                         for f in json.loads(body)["files"]]
                return 200, {}, json.dumps({"files": files}).encode()
            for line in body.decode().splitlines():
                item = json.loads(line)
                if item["key"] == "file":
                    repo.files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                elif item["key"] == "deletedFile":
                    repo.files.pop(item["value"]["path"], None)
            repo.commits.append(hashlib.sha1(f"{len(repo.commits)}{sorted(repo.files)}".encode()).hexdigest())
            oid = repo.commits[-1]
            return 200, {}, json.dumps({"commitUrl": f"{self.url}/{m.group(1)}/commit/{oid}", "commitOid": oid,
                                        "pullRequestUrl": None}).encode()
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        if m and method == "GET":
            repo = self.repos.get(m.group(1))
            if repo is None:
                return 404, {"X-Error-Code": "RepoNotFound"}, b'{"error": "Repository not found"}'
            return 200, {}, json.dumps({"id": m.group(1), "modelId": m.group(1), "sha": repo.commits[-1],
                                        "private": repo.private,
                                        "siblings": [{"rfilename": p} for p in sorted(repo.files)]}).encode()
        m = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", path)
        if m and method == "GET":
            repo = self.repos[m.group(1)]
            entries = [{"type": "file", "path": p, "size": len(d), "oid": git_sha1(d)}
                       for p, d in sorted(repo.files.items())]
            return 200, {}, json.dumps(entries).encode()
        m = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if m and method in ("GET", "HEAD"):
            repo = self.repos.get(m.group(1))
            data = repo.files.get(m.group(3)) if repo else None
            if data is None:
                return 404, {"X-Error-Code": "EntryNotFound"}, b"not found"
            headers = {"X-Repo-Commit": repo.commits[-1], "ETag": f'"{git_sha1(data)}"'}
            return 200, headers, data
        return 404, {}, json.dumps({"error": f"no route {method} {path}"}).encode()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _serve(self, method: str):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = unquote(urlparse(self.path).path)
                server.requests.append(f"{method} {path}")
                server.auth_headers.append(self.headers.get("Authorization") or "")
                if server.fail_next > 0:
                    server.fail_next -= 1
                    status, headers, payload = 500, {}, b'{"error": "Internal Error"}'
                else:
                    status, headers, payload = server.route(method, path, body)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json" if payload[:1] in (b"{", b"[") else
                                 "application/octet-stream")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if method != "HEAD":
                    self.wfile.write(payload)

            def do_GET(self):
                self._serve("GET")

            def do_HEAD(self):
                self._serve("HEAD")

            def do_POST(self):
                self._serve("POST")

        return Handler
