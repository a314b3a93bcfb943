"""Real processes for the tests: the zerohop sidecar built from this
repository, and a Python http.server origin, both on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Dict, List, Optional

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_built: Dict[str, str] = {}


def go_build(pkg: str, name: str) -> str:
    """Builds a Go main package of this repository once per test session."""
    if pkg in _built:
        return _built[pkg]
    out = os.path.join(tempfile.mkdtemp(prefix="zerohop-py-"), name)
    subprocess.run(["go", "build", "-o", out, pkg], cwd=REPO, check=True)
    _built[pkg] = out
    return out


class Origin:
    """An origin server: every path is cacheable for 300 s with a ~1 KiB
    body, an ETag and a Surrogate-Key, and every request is counted by
    path."""

    def __init__(self) -> None:
        self.counts: Dict[str, int] = {}
        self.lock = threading.Lock()
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                with origin.lock:
                    origin.counts[self.path] = origin.counts.get(self.path, 0) + 1
                    n = origin.counts[self.path]
                body = f"body of {self.path} #{n}\n".encode() + b"x" * 1000
                self.send_response(200)
                # /raw/ paths are not compressible, so the sidecar stores
                # one entry (no Vary marker and variants).
                ctype = "application/octet-stream" if self.path.startswith("/raw/") else "text/plain"
                self.send_header("Content-Type", ctype)
                self.send_header("Cache-Control", "max-age=300")
                self.send_header("ETag", f'"{n}"')
                self.send_header("Surrogate-Key", "t-" + self.path.strip("/").replace("/", "-"))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self, path: str) -> int:
        with self.lock:
            return self.counts.get(path, 0)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Sidecar:
    """`zerohop run` on 127.0.0.1 with a temporary cache directory."""

    def __init__(self, binary: str, cache_dir: Optional[str] = None, listen: Optional[str] = None) -> None:
        self.owns_dir = cache_dir is None
        self.dir = cache_dir or tempfile.mkdtemp(prefix="zerohop-cache-")
        self.listen = listen or f"127.0.0.1:{free_port()}"
        self.admin = f"127.0.0.1:{free_port()}"
        env = dict(os.environ)
        env.update(
            ZEROHOP_LISTEN=self.listen,
            ZEROHOP_ADMIN=self.admin,
            ZEROHOP_CACHE_DIR=self.dir,
            ZEROHOP_CACHE_SIZE="32MiB",
            ZEROHOP_ACCESS_LOG="off",
            ZEROHOP_LOG_FORMAT="text",
            # The tests' origins are on loopback, which forward listeners
            # refuse by default.
            ZEROHOP_FORWARD_ALLOW_LOOPBACK="true",
        )
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([binary, "run"], env=env, stdout=subprocess.DEVNULL, stderr=self.stderr)
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://{self.admin}/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError(f"zerohop did not become ready:\n{self.log()}")
            time.sleep(0.02)

    def log(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the writer dies without closing the file (state stays
        live, the heartbeat stops)."""
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.owns_dir:
            shutil.rmtree(self.dir, ignore_errors=True)


def wait_until(cond: Callable[[], object], timeout: float = 5.0) -> bool:
    """Polls cond until it is true or timeout seconds have passed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.005)
    return bool(cond())


__all__: List[str] = ["Origin", "Sidecar", "free_port", "go_build", "wait_until", "REPO"]
