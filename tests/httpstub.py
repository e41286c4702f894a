"""An HTTP server on loopback serving fixed replies by path and recording what it was asked."""

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

POLL_INTERVAL = 0.02  # seconds; shutdown() waits up to this long


@dataclass(frozen=True)
class Reply:
    """What the stub answers for one path: a status, a body and extra headers (``Location``...)."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class HttpStub:
    """A running stub: its base URL and every request path (with query) it received."""

    host: str
    port: int
    requests: list[str] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"


@contextmanager
def running_http(routes: Mapping[str, Reply]) -> Iterator[HttpStub]:
    """Serve ``routes`` (path without query -> reply; anything else is 404) until the block ends."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    stub = HttpStub("127.0.0.1", server.server_address[1])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            stub.requests.append(self.path)
            reply = routes.get(urlsplit(self.path).path, Reply(404, b"not found"))
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the tests assert on ``stub.requests``."""

    server.RequestHandlerClass = Handler
    thread = threading.Thread(target=server.serve_forever, args=(POLL_INTERVAL,), daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
