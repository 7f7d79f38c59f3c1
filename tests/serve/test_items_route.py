"""POST /v1/items and GET /v1/items/{id}/similar over a model with a text part (real app)."""

from __future__ import annotations

import time

import pytest
import torch
from fastapi.testclient import TestClient

from prismrec.profile import open_store
from prismrec.profile.live import LiveProfiles
from prismrec.recommender import Recommender
from prismrec.serve import ServeSettings, create_app
from prismrec.text import HashingEncoder

torch.set_num_threads(1)

CLIENT, ADMIN = "client-key-123", "admin-key-456"
T0 = 1_700_000_000.0
ADMIN_HEADER = {"X-API-Key": ADMIN}


@pytest.fixture(scope="module")
def text_checkpoint(tmp_path_factory):
    """A small LSTM with an id+text item embedding over the synthetic shop's catalogue."""
    from prismrec.data.synthetic import generate

    data = generate(n_users=120, n_items=60, seed=1).to_dataset()
    rec = Recommender("lstm", model_config={"dim": 16, "id_dropout": 0.3},
                      train_config={"epochs": 2, "progress": False, "threads": 1}).fit(
        data, text=True, encoder=HashingEncoder(64))
    return rec.save(tmp_path_factory.mktemp("ckpt") / "lstm-text")


@pytest.fixture
def rec(text_checkpoint) -> Recommender:
    return Recommender.load(text_checkpoint)  # fresh per test: adding items changes it


@pytest.fixture
def client(rec, tmp_path):
    settings = ServeSettings(api_key=CLIENT, admin_key=ADMIN, max_batch=5,
                             max_body_bytes=50_000)
    with open_store(f"sqlite:///{tmp_path / 'items.db'}") as store, \
            TestClient(create_app(LiveProfiles(rec, store), settings)) as c:
        c.headers["X-API-Key"] = CLIENT
        yield c


def item(id_: str, title: str, **fields) -> dict:
    return {"id": id_, "title": title, **fields}


def post_items(client, *items, headers=ADMIN_HEADER):
    return client.post("/v1/items", json={"items": list(items)}, headers=headers)


def post_events(client, user: str, items: list[str], prefix: str = "e") -> dict:
    body = {"events": [{"user": user, "item": it, "timestamp": T0 + j,
                        "event_id": f"{prefix}-{user}-{j}"} for j, it in enumerate(items)]}
    return client.post("/v1/events", json=body).json()


def test_posted_items_are_recommendable_at_once(client):
    live = client.app.state.live
    before = {"items": live.n_items, "checkpoint": live.checkpoint}
    reply = post_items(client, item("new-lamp", "Brass desk lamp", categories=["lighting"]))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["added"] == ["new-lamp"] and body["updated"] == []
    assert body["items"] == before["items"] + 1 == live.n_items
    assert body["checkpoint"] != before["checkpoint"]
    ranked = client.get("/v1/users/u0001/recommendations", params={"k": 61}).json()["items"]
    assert "new-lamp" in [it["item"] for it in ranked]  # a candidate like any other item
    ingest = post_events(client, "buyer", ["new-lamp", "i00003"])
    assert ingest["unknown_items"] == [] and ingest["folded"] == 2
    recs = client.get("/v1/users/buyer/recommendations", params={"k": 5}).json()
    assert recs["fallback"] is None
    assert not {"new-lamp", "i00003"} & {it["item"] for it in recs["items"]}
    similar = client.get("/v1/items/new-lamp/similar", params={"k": 3})
    assert similar.status_code == 200 and len(similar.json()["similar"]) == 3


def test_events_logged_before_their_item_existed_count_once_it_is_added(client):
    first = post_events(client, "early", ["i00001", "coming-soon", "i00002"])
    assert first["unknown_items"] == ["coming-soon"] and first["folded"] == 2
    assert post_items(client, item("coming-soon", "Garden hose reel")).status_code == 200
    recs = client.get("/v1/users/early/recommendations", params={"k": 61}).json()
    assert "coming-soon" not in [it["item"] for it in recs["items"]]  # seen now
    profile = client.get("/v1/users/early/profile").json()
    assert profile["recent_items"] == ["i00001", "coming-soon", "i00002"]
    # the read rebuilt the state in memory; the service's writer thread stores it soon after
    deadline = time.monotonic() + 10
    while profile["state_checkpoint"] != profile["checkpoint"] and time.monotonic() < deadline:
        time.sleep(0.02)
        profile = client.get("/v1/users/early/profile").json()
    assert profile["state_checkpoint"] == profile["checkpoint"]


def test_known_ids_are_re_encoded_and_reported_as_updated(client, rec):
    live = client.app.state.live
    at = rec.items_.index_of("i00004")
    before = live.model.items.text_vectors[1 + at].clone()  # row 0 is padding
    reply = post_items(client, item("i00004", "A completely different title"),
                       {"item": "brand-new", "description": "Some words about it"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["added"] == ["brand-new"] and reply.json()["updated"] == ["i00004"]
    assert (live.model.items.text_vectors[1 + at] != before).any()  # the served model
    # the service grew a copy and swapped it in: the Recommender it started from is as it was
    torch.testing.assert_close(rec.model_.items.text_vectors[1 + at], before)
    assert "brand-new" not in rec.items_ and "brand-new" in live.items


def test_similar_items_come_from_the_recommender(client, rec):
    reply = client.get("/v1/items/i00001/similar", params={"k": 4}).json()
    want = rec.similar_items("i00001", k=4)
    assert [s["item"] for s in reply["similar"]] == want["item"].tolist()
    assert [s["similarity"] for s in reply["similar"]] == pytest.approx(want["score"].tolist())
    missing = client.get("/v1/items/no-such-item/similar")
    assert missing.status_code == 404 and "no-such-item" in missing.json()["error"]


@pytest.mark.parametrize("items,status,words", [
    ([item("blank", "  ")], 400, "'blank'"),
    ([item("twice", "A"), item("twice", "B")], 422, "twice"),
    ([{"title": "no id"}], 422, "id"),
    ([item("x", "A lamp", colour="red")], 422, "colour"),
    ([item(f"n{i}", "A lamp") for i in range(6)], 413, "limit of 5"),
    ([item("x", 42)], 422, "title"),
])
def test_invalid_items_are_refused_with_a_message_and_nothing_changes(client, items, status,
                                                                      words):
    n = client.app.state.live.n_items
    reply = post_items(client, *items)
    assert reply.status_code == status and words in reply.json()["error"]
    assert client.app.state.live.n_items == n


def test_adding_items_needs_the_admin_key(client):
    refused = post_items(client, item("x", "A lamp"), headers={})
    assert refused.status_code == 403 and "admin" in refused.json()["error"]
    assert client.get("/v1/items/x/similar").status_code == 404


def test_adding_items_is_refused_when_several_workers_serve_the_model(rec, tmp_path):
    settings = ServeSettings(api_key=CLIENT, admin_key=ADMIN, workers=2)
    with open_store(f"sqlite:///{tmp_path / 'items.db'}") as store:
        live = LiveProfiles(rec, store)
        with TestClient(create_app(live, settings)) as c:
            reply = post_items(c, item("n-1", "a brand new lamp"))
        assert reply.status_code == 409
        assert "single worker" in reply.json()["error"] and "2" in reply.json()["error"]
        assert not live.item_known("n-1")


def test_the_dashboard_follows_the_bundle_the_service_swapped_in(rec, tmp_path):
    import pandas as pd

    from prismrec.serve.ui.data import Dashboard

    with open_store(f"sqlite:///{tmp_path / 'items.db'}") as store:
        live = LiveProfiles(rec, store)
        dash = Dashboard(live.bundle.source, live=live)
        assert dash.recommender is rec
        live.add_items(pd.DataFrame({"item": ["shed-lamp"], "title": ["Solar shed lamp"]}),
                       HashingEncoder(64))
        assert dash.recommender is live.bundle.source and dash.recommender is not rec
        assert "shed-lamp" in dash.recommender.items_
        assert dash.title("shed-lamp") == "Solar shed lamp"
