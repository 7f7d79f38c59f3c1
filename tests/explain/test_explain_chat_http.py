"""The chat-endpoint narrator against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from prismrec.explain import (
    ChatEndpointNarrator,
    FallbackNarrator,
    InterestSummary,
    NarratorAuthError,
    NarratorError,
    ProfileSummary,
    TemplateNarrator,
)

PROFILE = ProfileSummary((
    InterestSummary("running gear · trail", 0.6, "short", ("Stridex Trail Shoes",
                                                            "Kinetra Hydration Vest")),
    InterestSummary("coffee · espresso", 0.4, "long", ("Roastwell Espresso Machine",)),
))
GOOD = ("You have been running a lot lately, with the Stridex Trail Shoes and Kinetra "
        "Hydration Vest. Coffee is a steady interest of yours.")


def chat_reply(content) -> tuple[int, dict, bytes]:
    body = {"id": "x", "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}]}
    return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()


class Server:
    """Answers POSTs from a script of (status, headers, body) replies; records each request."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict, bytes]] = []
        self.requests: list[dict] = []
        self.delay = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", 0))
                outer.requests.append({"path": self.path, "headers": dict(self.headers),
                                       "json": json.loads(self.rfile.read(n))})
                time.sleep(outer.delay)
                status, headers, body = (outer.script.pop(0) if outer.script
                                         else chat_reply(GOOD))
                try:
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting (the timeout test)

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def narrator(server: Server, **kw) -> ChatEndpointNarrator:
    return ChatEndpointNarrator(server.url, "tiny-chat", backoff=0.01, **kw)


def test_a_good_answer_becomes_the_narrative(server):
    n = narrator(server, api_key="sk-test").narrate(PROFILE)
    assert n.text == GOOD
    assert n.backend == "chat:tiny-chat" and n.fallback_reason is None and n.seconds > 0
    (req,) = server.requests
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == "Bearer sk-test"
    assert req["json"]["model"] == "tiny-chat" and req["json"]["stream"] is False
    prompt = req["json"]["messages"][-1]["content"]
    assert "running gear · trail (60%, recent" in prompt and '"Stridex Trail Shoes"' in prompt


def test_an_answer_inventing_an_item_falls_back_to_the_template(server):
    invented = "You love running, so try the Velocity Carbon Racer from our store."
    server.script.append(chat_reply(invented))
    n = narrator(server).narrate(PROFILE)
    assert n.text == TemplateNarrator().narrate(PROFILE).text
    assert n.backend == "template"
    assert n.fallback_reason.startswith("chat:tiny-chat output rejected: names ")
    assert "Velocity Carbon Racer" in n.fallback_reason
    assert n.rejected_text == invented


def test_a_long_answer_is_cut_to_the_sentence_limit(server):
    server.script.append(chat_reply(GOOD + " You also like coffee. And more coffee. And tea."))
    n = narrator(server).narrate(PROFILE)
    assert n.text == GOOD + " You also like coffee."


def test_a_refused_key_fails_at_once_with_an_auth_error(server):
    server.script.append((401, {}, b'{"error": "invalid api key"}'))
    with pytest.raises(NarratorAuthError, match=r"HTTP 401.*check the API key \(none was set\)"):
        narrator(server).narrate(PROFILE)
    assert len(server.requests) == 1


def test_server_errors_are_retried_with_back_off(server):
    server.script += [(503, {}, b"busy"), (429, {"Retry-After": "0"}, b"slow down")]
    n = narrator(server, max_retries=2).narrate(PROFILE)
    assert n.text == GOOD and len(server.requests) == 3


def test_persistent_errors_give_up_naming_the_endpoint(server):
    server.script += [(500, {}, b"boom")] * 3
    with pytest.raises(NarratorError, match=r"/v1/chat/completions .*after 2 attempt\(s\): "
                                            r"HTTP 500: boom"):
        narrator(server, max_retries=1).narrate(PROFILE)


def test_a_wrong_path_says_to_check_the_url(server):
    server.script.append((404, {}, b"not found"))
    with pytest.raises(NarratorError, match="HTTP 404.*is the url right"):
        narrator(server).narrate(PROFILE)


def test_a_malformed_answer_is_an_error_naming_what_is_missing(server):
    server.script.append((200, {}, b"<html>proxy login</html>"))
    with pytest.raises(NarratorError, match="invalid JSON"):
        narrator(server).narrate(PROFILE)
    server.script.append((200, {}, b'{"choices": []}'))
    with pytest.raises(NarratorError, match=r"without choices\[0\]\.message\.content"):
        narrator(server).narrate(PROFILE)
    server.script.append(chat_reply(None))
    with pytest.raises(NarratorError, match="non-text content"):
        narrator(server).narrate(PROFILE)


def test_a_slow_server_times_out_and_is_retried(server):
    server.delay = 0.5
    with pytest.raises(NarratorError, match="after 2 attempt"):
        narrator(server, timeout=0.1, max_retries=1).narrate(PROFILE)
    assert len(server.requests) == 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_url_is_named_in_the_error():
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(NarratorError, match=f"{url}/chat/completions unreachable"):
        ChatEndpointNarrator(url, "m", max_retries=1, backoff=0.01).narrate(PROFILE)


def test_fallback_narrator_turns_a_dead_endpoint_into_the_template():
    url = f"http://127.0.0.1:{free_port()}"
    n = FallbackNarrator(ChatEndpointNarrator(url, "m", max_retries=0)).narrate(PROFILE)
    assert n.backend == "template"
    assert n.text == TemplateNarrator().narrate(PROFILE).text
    assert n.fallback_reason.startswith(f"chat:m failed: chat endpoint {url}/v1/chat/completions")


def test_an_empty_profile_is_described_without_calling_the_server(server):
    n = narrator(server).narrate(ProfileSummary())
    assert n.backend == "template" and "not enough activity" in n.text
    assert server.requests == []


@pytest.mark.parametrize(("url", "endpoint"), [
    ("http://h:1/v1", "http://h:1/v1/chat/completions"),
    ("http://h:1/", "http://h:1/v1/chat/completions"),
    ("https://h/v1/chat/completions", "https://h/v1/chat/completions"),
])
def test_endpoint_is_built_from_a_base_or_full_url(url, endpoint):
    assert ChatEndpointNarrator(url, "m").endpoint == endpoint


def test_a_url_without_scheme_is_refused():
    with pytest.raises(ValueError, match="http"):
        ChatEndpointNarrator("localhost:8000", "m")
