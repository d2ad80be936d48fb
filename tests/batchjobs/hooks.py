"""A webhook receiver for notification tests: an HTTP server on 127.0.0.1 in a thread of the test,
which keeps every request it gets (path and JSON body; with `requests`, also method and headers) and
answers with a status of the test's (and a Location, to test redirects)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hook:
    def __init__(self, *, status: int = 200, answer: bytes = b"ok", location: str = "") -> None:
        self.received: list[tuple[str, dict]] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []  # method, path, headers: of every method
        self.status, self.answer, self.location = status, answer, location
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                hook.requests.append((self.command, self.path, dict(self.headers)))
                if self.command == "POST":
                    hook.received.append((self.path, json.loads(body or b"{}")))
                self.send_response(hook.status)
                if hook.location:
                    self.send_header("Location", hook.location)
                self.send_header("Content-Length", str(len(hook.answer)))
                self.end_headers()
                self.wfile.write(hook.answer)

            do_GET = do_PUT = do_DELETE = do_PATCH = do_POST

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str = "/hooks/s3cr3t-t0ken") -> str:
        """Its Apprise URL (json:// posts JSON over plain HTTP); the path plays a secret token."""
        return f"json://127.0.0.1:{self.port}{path}"

    def messages(self) -> list[dict]:
        return [body for _, body in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (a connection is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
