#!/usr/bin/env python3
"""A git server for trying the golden path on one machine (used by run-local.sh).

It is git's own smart-HTTP server, `git http-backend`, run as the CGI program it is,
plus the two things a plain `git http-backend` lacks for the golden path:

- raw files at /<owner>/<repo>/raw/branch/<branch>/<path> (Gitea's and Forgejo's
  layout), because `catalog:register` hands Backstage's catalog the URL
  `<repoContentsUrl>/catalog-info.yaml`, and for a host without an integration
  `publish:git` outputs `repoContentsUrl` as <repository>/raw/branch/<branch>, which
  the catalog reads with a plain GET;
- a token for pushing (the password of HTTP basic auth, or a bearer token), as a git
  host asks for one; reading needs none, as for a public repository.

Repositories are bare directories <root>/<owner>/<repo>.git; pushing to one needs
`git config http.receivepack true` in it (git http-backend refuses pushes from an
unauthenticated CGI request otherwise). run-local.sh creates them that way.

Usage: git-server.py --root DIR [--port N] [--token TOKEN]
Prints `git server listening on http://127.0.0.1:<port>` once it accepts connections.
Loopback only; not for production.
"""

import argparse
import base64
import os
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    root = Path(".")
    token = None

    def do_GET(self):
        self.handle_request()

    def do_POST(self):
        self.handle_request()

    def handle_request(self):
        url = urlsplit(self.path)
        path = unquote(url.path)
        body = self.read_body()
        pushing = path.endswith("/git-receive-pack") or "service=git-receive-pack" in url.query
        if pushing and not self.authorized():
            self.reply(401, b"authentication required\n", [("WWW-Authenticate", 'Basic realm="git"')])
            return
        if self.command == "GET" and "/raw/branch/" in path:
            self.raw_file(path)
        else:
            self.http_backend(path, url.query, body)

    def authorized(self):
        if not self.token:
            return True
        value = self.headers.get("Authorization", "")
        if value.startswith("Bearer "):
            return value[len("Bearer "):] == self.token
        if value.startswith("Basic "):
            try:
                decoded = base64.b64decode(value[len("Basic "):]).decode()
            except ValueError:
                return False
            return decoded.partition(":")[2] == self.token
        return False

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def raw_file(self, path):
        repo, _, rest = path.partition("/raw/branch/")
        branch, _, file = rest.partition("/")
        git_dir = (self.root / (repo.strip("/") + ".git")).resolve()
        if self.root not in git_dir.parents or not git_dir.is_dir() or not branch or not file:
            self.reply(404, b"not found\n")
            return
        shown = subprocess.run(
            ["git", "--git-dir", str(git_dir), "show", f"{branch}:{file}"],
            capture_output=True,
        )
        if shown.returncode != 0:
            self.reply(404, b"not found\n")
            return
        self.reply(200, shown.stdout, [("Content-Type", "text/plain; charset=utf-8")])

    def http_backend(self, path, query, body):
        env = {
            "PATH": os.environ.get("PATH", ""),
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_ADDR": self.client_address[0],
            "REMOTE_USER": "golden-path",
        }
        for header, variable in [
            ("Content-Type", "CONTENT_TYPE"),
            ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
            ("Git-Protocol", "GIT_PROTOCOL"),
        ]:
            if header in self.headers:
                env[variable] = self.headers[header]
        backend = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
        output = backend.stdout
        head, separator, content = output.partition(b"\r\n\r\n")
        if not separator:
            head, separator, content = output.partition(b"\n\n")
        if not separator:
            sys.stderr.write(backend.stderr.decode(errors="replace"))
            self.reply(502, b"git http-backend gave no headers\n")
            return
        status, headers = 200, []
        for line in head.decode(errors="replace").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name.strip(), value.strip()))
        self.reply(status, content, headers)

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):
        sys.stderr.write("git-server: %s\n" % (format % args))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="directory holding <owner>/<repo>.git")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", help="the token pushing needs; none: anyone may push")
    args = parser.parse_args()
    Handler.root = Path(args.root).resolve()
    Handler.token = args.token
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"git server listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
