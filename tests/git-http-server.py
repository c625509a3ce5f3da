#!/usr/bin/env python3
"""git-http-server.py - a smart-HTTP git server behind HTTP Basic auth, for tests.

    git-http-server.py --root DIR --credentials FILE --port-file FILE [--log FILE]

Serves the bare repositories below DIR as http://127.0.0.1:PORT/NAME.git by
running `git http-backend` (git's own CGI program) for each request, so
fetch and push speak the real protocol. Every request must carry the
user:password of the first line of FILE as HTTP Basic credentials, or it is
answered 401. It listens on 127.0.0.1 on a port the kernel picks, writes that
port into --port-file once it accepts connections, and serves until killed.

The log has one line per request: method, path, status and the user name
offered. No password or Authorization header is ever written to it.
"""

import argparse
import base64
import binascii
import hmac
import http.server
import os
import subprocess
import sys
import threading


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--root", required=True, help="directory holding the bare repositories")
    p.add_argument("--credentials", required=True, help="file whose first line is user:password")
    p.add_argument("--port-file", required=True, help="where to write the port once listening")
    p.add_argument("--log", help="request log (default: stderr)")
    return p.parse_args()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every response has a Content-Length
    server_version = "gitkv-test-git-http"

    def do_GET(self):
        self.serve()

    def do_POST(self):
        self.serve()

    def log_message(self, fmt, *args):
        pass  # one line per request, written by serve()

    def record(self, status, user):
        with self.server.log_lock:
            self.server.log.write(f"{self.command} {self.path} {status} user={user or '-'}\n")
            self.server.log.flush()

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def authenticated_user(self):
        """The user name if the request carries the right credentials, else (None, offered name)."""
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return None, None
        try:
            user, _, password = base64.b64decode(auth[6:], validate=True).partition(b":")
        except (binascii.Error, ValueError):
            return None, None
        want_user, want_password = self.server.credentials
        ok = hmac.compare_digest(user, want_user) & hmac.compare_digest(password, want_password)
        name = user.decode("utf-8", "replace")
        return (name, name) if ok else (None, name)

    def reply(self, status, headers, body):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def serve(self):
        body = self.read_body()
        user, offered = self.authenticated_user()
        if user is None:
            self.record(401, offered)
            self.reply(401, [("WWW-Authenticate", 'Basic realm="gitkv test"'),
                             ("Content-Type", "text/plain")], b"authentication required\n")
            return
        path, _, query = self.path.partition("?")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_PROJECT_ROOT": self.server.root,
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": self.request_version,
            "REQUEST_METHOD": self.command,
            "PATH_INFO": path,
            "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
            "CONTENT_LENGTH": str(len(body)),
            "REMOTE_USER": user,  # git http-backend takes pushes from authenticated users only
            "REMOTE_ADDR": self.client_address[0],
        }
        for header, var in (("Content-Encoding", "HTTP_CONTENT_ENCODING"),
                            ("Git-Protocol", "GIT_PROTOCOL")):
            if self.headers.get(header):
                env[var] = self.headers[header]
        cgi = subprocess.run(["git", "http-backend"], input=body, env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        if cgi.stderr:
            with self.server.log_lock:
                self.server.log.write(cgi.stderr.decode("utf-8", "replace"))
        head, sep, out = cgi.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, sep, out = cgi.stdout.partition(b"\n\n")
        status, headers = 200, []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.split()[0])
            elif name:
                headers.append((name, value.strip()))
        if not sep or cgi.returncode != 0 and status == 200:
            status, headers, out = 500, [("Content-Type", "text/plain")], b"git http-backend failed\n"
        self.record(status, user)
        self.reply(status, headers, out)


def main():
    args = parse_args()
    with open(args.credentials, "rb") as f:
        line = f.readline().rstrip(b"\r\n")
    user, sep, password = line.partition(b":")
    if not sep:
        sys.exit("git-http-server.py: the credentials file must hold user:password")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.root = os.path.abspath(args.root)
    server.credentials = (user, password)
    server.log = open(args.log, "a", encoding="utf-8") if args.log else sys.stderr
    server.log_lock = threading.Lock()
    tmp = args.port_file + ".tmp"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(f"{server.server_address[1]}\n")
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
