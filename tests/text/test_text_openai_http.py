"""The OpenAI-compatible embeddings client against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from prismrec.text import (
    CachedEncoder,
    DimensionMismatchError,
    EncoderAuthError,
    EncoderError,
    OpenAIEmbeddingsEncoder,
)

LETTERS = "abcdefg"


def expected(text: str) -> list[float]:
    """The server's deterministic 8-d vector: length, then counts of a..g."""
    return [float(len(text)), *(float(text.count(c)) for c in LETTERS)]


class EmbeddingServer(ThreadingHTTPServer):
    """Speaks POST /v1/embeddings; misbehaves on demand through its public attributes."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.requests: list[dict] = []
        self.fail_with: deque[int] = deque()  # statuses to answer before answering properly
        self.api_key: str | None = None
        self.width: int | None = None  # cut vectors to this width
        self.ragged = False  # last row one shorter
        self.delay = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request, client_address) -> None:  # a client that timed out
        pass


class Handler(BaseHTTPRequestHandler):
    server: EmbeddingServer

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        srv = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv.requests.append({"path": self.path, "auth": self.headers.get("Authorization"),
                             **body})
        time.sleep(srv.delay)
        if srv.fail_with:
            status = srv.fail_with.popleft()
            return self._send(status, {"error": {"message": f"scripted {status}"}},
                              {"Retry-After": "0"} if status == 429 else {})
        if srv.api_key is not None and self.headers.get("Authorization") != \
                f"Bearer {srv.api_key}":
            return self._send(401, {"error": {"message": "invalid api key"}})
        if self.path != "/v1/embeddings":
            return self._send(404, {"error": {"message": "not found"}})
        rows = [expected(t)[: srv.width] for t in body["input"]]
        if srv.ragged:
            rows[-1] = rows[-1][:-1]
        data = [{"object": "embedding", "embedding": r, "index": i} for i, r in enumerate(rows)]
        self._send(200, {"object": "list", "data": data[::-1], "model": body["model"]})

    def _send(self, status: int, payload: dict, headers: dict | None = None) -> None:
        raw = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server():
    srv = EmbeddingServer()
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(timeout=5)


def client(server: EmbeddingServer, **kw) -> OpenAIEmbeddingsEncoder:
    opts = {"model": "tiny-embed", "backoff": 0.01, "max_backoff": 0.05, "normalize": False}
    return OpenAIEmbeddingsEncoder(server.url, **{**opts, **kw})


TEXTS = ["abc", "bad cafe", "", "gg", "deaf bee"]


def test_batches_requests_and_keeps_input_order(server):
    enc = client(server, batch_size=2)
    out = enc.encode(TEXTS)
    assert out.dtype == np.float32 and out.shape == (5, 8)
    np.testing.assert_array_equal(out, [expected(t) for t in TEXTS])  # replies came reversed
    assert [r["input"] for r in server.requests] == [TEXTS[:2], TEXTS[2:4], TEXTS[4:]]
    assert {r["model"] for r in server.requests} == {"tiny-embed"}
    assert {r["path"] for r in server.requests} == {"/v1/embeddings"}
    assert enc.dim == 8  # learned from the first reply


def test_vectors_are_unit_length_by_default(server):
    out = client(server, normalize=True).encode(["abc", "deaf"])
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/embeddings"])
def test_base_url_or_full_endpoint_both_work(server, suffix):
    enc = OpenAIEmbeddingsEncoder(server.url + suffix, model="m")
    assert enc.endpoint == server.url + "/v1/embeddings"
    assert enc.encode(["abc"]).shape == (1, 8)


def test_api_key_is_sent_as_bearer_and_hidden_from_repr(server):
    server.api_key = "s3cret"
    enc = client(server, api_key="s3cret")
    enc.encode(["abc"])
    assert server.requests[0]["auth"] == "Bearer s3cret"
    assert "s3cret" not in repr(enc)


def test_rejected_key_is_an_auth_error_without_retries(server):
    server.api_key = "right"
    with pytest.raises(EncoderAuthError, match=r"HTTP 401.*API key"):
        client(server, api_key="wrong").encode(["abc"])
    assert len(server.requests) == 1


def test_server_errors_are_retried_then_succeed(server):
    server.fail_with.extend([500, 503, 429])
    out = client(server, max_retries=3).encode(["abc"])
    np.testing.assert_array_equal(out, [expected("abc")])
    assert len(server.requests) == 4


def test_persistent_server_error_gives_up_naming_the_url(server):
    server.fail_with.extend([502] * 10)
    with pytest.raises(EncoderError, match=rf"{server.url}/v1/embeddings.*3 attempt.*502"):
        client(server, max_retries=2).encode(["abc"])
    assert len(server.requests) == 3


def test_client_error_is_not_retried(server):
    enc = OpenAIEmbeddingsEncoder(server.url + "/v2/embeddings", model="m", backoff=0.01)
    with pytest.raises(EncoderError, match="HTTP 404"):
        enc.encode(["abc"])
    assert len(server.requests) == 1


def test_unreachable_endpoint_fails_after_retries_naming_the_url():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    enc = OpenAIEmbeddingsEncoder(f"http://127.0.0.1:{port}/v1", model="m", max_retries=2,
                                  backoff=0.01, timeout=2)
    with pytest.raises(EncoderError, match=rf"127.0.0.1:{port}/v1/embeddings.*3 attempt"):
        enc.encode(["abc"])


def test_slow_server_times_out_and_is_retried(server):
    server.delay = 0.5
    with pytest.raises(EncoderError, match="2 attempt.*timed out"):
        client(server, timeout=0.1, max_retries=1).encode(["abc"])


def test_configured_dimension_must_match_the_reply(server):
    with pytest.raises(DimensionMismatchError, match="8-d.*dim=16"):
        client(server, dim=16).encode(["abc"])


def test_width_changing_between_batches_is_refused(server):
    enc = client(server, batch_size=1)
    enc.encode(["abc"])
    server.width = 6
    with pytest.raises(DimensionMismatchError, match="6-d.*dim=8"):
        enc.encode(["abc"])


def test_rows_of_different_lengths_are_refused(server):
    server.ragged = True
    with pytest.raises(DimensionMismatchError, match=r"different lengths \[7, 8\]"):
        client(server).encode(["abc", "def"])


def test_cached_http_encoder_sends_only_new_texts(server, tmp_path):
    cached = CachedEncoder(client(server), tmp_path)
    cached.encode(["abc", "deaf"])
    cached.encode(["deaf", "abc", "cab"])
    assert [r["input"] for r in server.requests] == [["deaf", "abc"], ["cab"]]
