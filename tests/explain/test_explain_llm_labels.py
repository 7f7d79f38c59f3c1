"""Interests named by a chat model through a real HTTP server on 127.0.0.1, cached per
component; the catalogue label stays the default and the fallback."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

from prismrec import Recommender
from prismrec.data.synthetic import generate
from prismrec.explain import ChatEndpointNarrator, ChatLabeler


class ChatServer:
    """Replies to chat completions with ``self.reply`` (or an HTTP error); records requests."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.reply = "Trail running"
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                n = int(self.headers.get("Content-Length", 0))
                outer.requests.append(json.loads(self.rfile.read(n)))
                body = json.dumps({"choices": [{"message": {"role": "assistant",
                                                            "content": outer.reply}}]}).encode()
                if outer.status != 200:
                    body = b'{"error": "overloaded"}'
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = ChatServer()
    yield s
    s.close()


@pytest.fixture(scope="module")
def rec():
    torch.set_num_threads(1)
    data = generate(n_users=60, n_items=120, seed=4).to_dataset()
    return Recommender("gru", model_config={"dim": 16, "interests": 3},
                       train_config={"epochs": 2, "progress": False, "threads": 1}).fit(data)


def labeler(server: ChatServer) -> ChatLabeler:
    return ChatLabeler(ChatEndpointNarrator(server.url, model="tiny", max_retries=0))


def test_the_chat_model_names_each_interest_from_titles_and_categories(rec, server):
    user = rec.users_.ids([0])[0]
    plain = rec.profile(user)
    named = rec.profile(user, labeler=labeler(server))
    assert [i.label for i in named.interests] == ["Trail running"] * len(named)
    assert {i.label_source for i in named.interests} == {"llm"}
    assert len(server.requests) == len(named)
    prompt = server.requests[0]["messages"][1]["content"]
    first = plain.interests[0]
    assert first.top_titles[0] in prompt
    assert first.label.split(" · ")[0] in prompt  # its categories are in the prompt too
    assert server.requests[0]["model"] == "tiny"


def test_names_are_cached_per_component(rec, server):
    lab = labeler(server)
    user = rec.users_.ids([1])[0]
    first = rec.profile(user, labeler=lab)
    asked = len(server.requests)
    server.reply = "Something else"
    again = rec.profile(user, labeler=lab)
    assert len(server.requests) == asked  # nothing asked twice
    assert [i.label for i in again.interests] == [i.label for i in first.interests]


def test_the_catalogue_label_is_the_default_and_the_fallback(rec, server):
    user = rec.users_.ids([2])[0]
    plain = rec.profile(user)
    assert server.requests == [] and "llm" not in {i.label_source for i in plain.interests}
    server.status = 503
    lab = labeler(server)
    failed = rec.profile(user, labeler=lab)
    assert [i.label for i in failed.interests] == [i.label for i in plain.interests]
    assert lab.cache == {}  # a failure is not remembered: the next read asks again
    server.status, server.reply = 200, "Here are some ideas:\n1. Running\n2. Coffee"
    rambling = rec.profile(user, labeler=lab)
    assert [i.label for i in rambling.interests] == [i.label for i in plain.interests]


def test_cli_profile_names_interests_with_the_chat_model(rec, server, tmp_path, capsys):
    from prismrec.cli import main

    ckpt = rec.save(tmp_path / "ckpt")
    user = rec.users_.ids([3])[0]
    assert main(["profile", "--checkpoint", str(ckpt), "--user", user, "--json",
                 "--llm-labels", "--chat-url", server.url, "--threads", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {i["label"] for i in doc["interests"]} == {"Trail running"}
    assert {i["label_source"] for i in doc["interests"]} == {"llm"}
    with pytest.raises(SystemExit, match="--chat-url"):
        main(["profile", "--checkpoint", str(ckpt), "--user", user, "--llm-labels"])
