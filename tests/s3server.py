"""A local S3 endpoint for tests: an HTTP server on 127.0.0.1 that hands each request to moto's S3
implementation (moto's own server needs Flask, which the project does not install), so pyarrow's,
boto3's and delta-rs's real S3 client code runs: requests, multipart uploads, listings, deletes,
conditional PUTs.

It runs in a process of its own: delta-rs holds the GIL during some calls, so a server thread in
the test's process would not answer them until they timed out."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from botocore.awsrequest import AWSPreparedRequest
from botocore.compat import HTTPHeaders
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber


class _S3Handler(BaseHTTPRequestHandler):
    """Hands each HTTP request to moto's S3 implementation, as if it came from botocore."""

    protocol_version = "HTTP/1.1"
    stubber = BotocoreStubber()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        pass

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = bytearray()
        while size := int(self.rfile.readline().split(b";")[0], 16):
            body += self.rfile.read(size)
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        return bytes(body)

    def _handle(self) -> None:
        headers = HTTPHeaders()
        for key, value in self.headers.items():
            if key.lower() != "host":
                headers[key] = value
        headers["Host"] = "s3.amazonaws.com"
        request = AWSPreparedRequest(self.command, f"http://s3.amazonaws.com{self.path}", headers, self._body(), False)
        status, out_headers, body = self.stubber.process_request(request)
        body = body.encode() if isinstance(body, str) else (body or b"")
        self.send_response(status)
        for key, value in out_headers.items():
            if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(key, str(value))
        length = out_headers.get("content-length", len(body)) if self.command == "HEAD" else len(body)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


def serve() -> None:
    """`python -m tests.s3server`: print the port, serve until standard input closes."""
    with mock_aws():
        server = ThreadingHTTPServer(("127.0.0.1", 0), _S3Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        print(server.server_address[1], flush=True)
        sys.stdin.read()
        server.shutdown()
        server.server_close()


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    """host:port of a local S3 endpoint on a free port of 127.0.0.1, empty for each test."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.s3server"],
        cwd=Path(__file__).resolve().parent.parent,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        port = proc.stdout.readline().strip()
        if not port.isdigit():
            pytest.fail(f"the local S3 endpoint did not start (exit code {proc.poll()})")
        yield f"127.0.0.1:{port}"
    finally:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def s3_url(endpoint: str, bucket: str, prefix: str) -> str:
    """A pyarrow S3 URL for the local endpoint; credentials come from the environment, as in
    production (set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, e.g. to "testing")."""
    return (
        f"s3://{bucket}/{prefix}?endpoint_override={endpoint}&scheme=http&region=us-east-1&allow_bucket_creation=true"
    )


if __name__ == "__main__":
    serve()
