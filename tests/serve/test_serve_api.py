"""The HTTP API in process (TestClient): what each route accepts, answers and refuses."""

from __future__ import annotations

import importlib

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from prismrec.profile import open_store
from prismrec.profile.live import LiveProfiles
from prismrec.recommender import Recommender
from prismrec.serve import ServeSettings, create_app

CLIENT, ADMIN = "client-key-123", "admin-key-456"
T0 = 1_700_000_000.0


@pytest.fixture(scope="module")
def rec(tiny_checkpoint) -> Recommender:
    return Recommender.load(tiny_checkpoint)


@pytest.fixture
def store(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'api.db'}") as s:
        yield s


@pytest.fixture
def client(rec, store) -> TestClient:
    settings = ServeSettings(api_key=CLIENT, admin_key=ADMIN, max_batch=20,
                             max_body_bytes=20_000)
    with TestClient(create_app(LiveProfiles(rec, store), settings)) as c:
        c.headers["X-API-Key"] = CLIENT
        yield c


def events(user: str, items: list[str], start: float = T0, prefix: str = "e") -> dict:
    return {"events": [{"user": user, "item": it, "timestamp": start + j,
                        "event_id": f"{prefix}{user}-{j}"} for j, it in enumerate(items)]}


def test_no_app_is_built_at_import_time():
    module = importlib.import_module("prismrec.serve.app")
    assert not [v for v in vars(module).values() if isinstance(v, FastAPI)]


def test_posting_events_reports_accepted_duplicates_late_and_unknown_items(client):
    body = events("ann", ["i00001", "i00002", "no-such-item"])
    first = client.post("/v1/events", json=body).json()
    assert (first["accepted"], first["duplicates"], first["late"]) == (3, 0, 0)
    assert first["unknown_items"] == ["no-such-item"] and first["folded"] == 2
    again = client.post("/v1/events", json=body).json()
    assert (again["accepted"], again["duplicates"]) == (0, 3)
    late = client.post("/v1/events", json=events("ann", ["i00003"], start=T0 - 50,
                                                   prefix="late")).json()
    assert late["late"] == 1 and late["late_users"] == ["ann"]


def test_recommendations_come_with_scores_and_reasons(client):
    client.post("/v1/events", json=events("bea", ["i00004", "i00005", "i00006"]))
    reply = client.get("/v1/users/bea/recommendations", params={"k": 5}).json()
    assert reply["fallback"] is None and len(reply["items"]) == 5
    scores = [it["score"] for it in reply["items"]]
    assert scores == sorted(scores, reverse=True)
    for it in reply["items"]:
        assert it["reason"].startswith("continues your recent sequence")
        assert it["item"] not in {"i00004", "i00005", "i00006"}
        if it["because"] is not None:
            assert it["because"]["item"] in {"i00004", "i00005", "i00006"}
            assert it["because"]["similarity"] > 0


def test_an_unknown_user_gets_popular_items_and_is_told(client):
    reply = client.get("/v1/users/nobody-at-all/recommendations", params={"k": 3}).json()
    assert reply["fallback"] == "popular" and len(reply["items"]) == 3
    assert all(it["reason"].startswith("popular") for it in reply["items"])


def test_exclude_and_diversity_are_applied_and_validated(client):
    client.post("/v1/events", json=events("cal", ["i00007"]))
    top = client.get("/v1/users/cal/recommendations", params={"k": 3}).json()["items"]
    first = top[0]["item"]
    reply = client.get("/v1/users/cal/recommendations",
                       params={"k": 3, "exclude": [first, "unknown-id"]}).json()
    assert first not in [it["item"] for it in reply["items"]]
    diverse = client.get("/v1/users/cal/recommendations", params={"k": 3, "diversity": 0.7})
    assert diverse.status_code == 200 and diverse.json()["diversity"] == 0.7
    bad = client.get("/v1/users/cal/recommendations", params={"diversity": 1.5})
    assert bad.status_code == 422 and "diversity" in bad.json()["error"]
    assert client.get("/v1/users/cal/recommendations", params={"k": 201}).status_code == 422


def test_the_recommendation_query_is_read_like_any_route(client):
    """The hot route parses its own query (no FastAPI parameter solving): same rules."""
    client.post("/v1/events", json=events("cy", ["i00007"]))
    url = "/v1/users/cy/recommendations"
    top = [it["item"] for it in client.get(url, params={"k": 4}).json()["items"]]
    reply = client.get(url, params=[("k", "9"), ("k", "2"), ("exclude", top[0]),
                                    ("exclude", top[1]), ("unknown", "x")]).json()
    assert [it["item"] for it in reply["items"]] == top[2:4]  # last k wins; both excluded
    seen = client.get(url, params={"k": 60, "filter_seen": "false"}).json()["items"]
    assert "i00007" in [it["item"] for it in seen]
    bad = client.get(url, params={"k": "ten", "diversity": "nan"})
    assert bad.status_code == 422
    assert "query.k" in bad.json()["error"] and "query.diversity" in bad.json()["error"]
    long = client.get("/v1/users/" + "u" * 1025 + "/recommendations")
    assert long.status_code == 422 and "1024" in long.json()["error"]


def test_the_recommendation_route_is_documented_with_its_parameters_and_key(client):
    doc = client.get("/openapi.json", headers={"X-API-Key": ADMIN}).json()
    op = doc["paths"]["/v1/users/{user}/recommendations"]["get"]
    assert [(p["name"], p["in"]) for p in op["parameters"]] == [
        ("user", "path"), ("k", "query"), ("diversity", "query"), ("exclude", "query"),
        ("filter_seen", "query"), ("explain", "query"), ("mute", "query"), ("boost", "query")]
    explain = next(p for p in op["parameters"] if p["name"] == "explain")
    assert explain["schema"]["default"] is False and "O(history)" in explain["description"]
    assert all(p["description"] for p in op["parameters"])
    assert op["security"] == doc["paths"]["/v1/events"]["post"]["security"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "RecommendationsOut")


def test_the_profile_and_preference_routes_are_documented(client):
    doc = client.get("/openapi.json", headers={"X-API-Key": ADMIN}).json()
    profile = doc["paths"]["/v1/users/{user}/profile"]["get"]
    assert profile["responses"]["200"]["content"]["application/json"]["schema"][
        "$ref"].endswith("ProfileOut")
    assert "timeline" in [p["name"] for p in profile["parameters"]]
    interest = doc["components"]["schemas"]["InterestOut"]["properties"]
    assert {"id", "label", "weight", "horizon", "first_seen", "last_seen", "top_items",
            "timeline"} <= set(interest)
    put = doc["paths"]["/v1/users/{user}/interests/{interest}"]["put"]
    assert put["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "PreferenceIn") and "client key" in put["description"]
    assert "get" in doc["paths"]["/v1/users/{user}/interests"]
    item = doc["components"]["schemas"]["RecommendedItem"]["properties"]
    assert {"title", "interest", "interest_label", "reason"} <= set(item)


def test_the_profile_shows_what_is_stored(client, rec):
    client.post("/v1/events", json=events("dot", ["i00008", "mystery"]))
    p = client.get("/v1/users/dot/profile").json()
    assert p["event_count"] == 2 and p["state_version"] == 1 and p["state_events"] == 2
    assert [e["item"] for e in p["recent_events"]] == ["i00008", "mystery"]
    assert p["recent_items"] == ["i00008"] and p["last_event_time"] == T0 + 1
    assert p["checkpoint"] == p["state_checkpoint"]
    trained = rec.users_.ids([0])[0]
    assert client.get(f"/v1/users/{trained}/profile").json()["known_from_training"] is True
    assert client.get("/v1/users/ghost/profile").status_code == 404


def test_deleting_a_user_needs_the_admin_key(client, store):
    client.post("/v1/events", json=events("eve", ["i00009"]))
    refused = client.delete("/v1/users/eve")
    assert refused.status_code == 403 and "admin" in refused.json()["error"]
    assert store.event_count("eve") == 1
    done = client.delete("/v1/users/eve", headers={"X-API-Key": ADMIN}).json()
    scrub = done.pop("scrub")
    assert done == {"user": "eve", "erased": True, "training_history_retained": False}
    assert scrub["done"] is True and scrub["attempts"] >= 1  # the checkpoint went in
    assert store.event_count("eve") == 0 and store.get_state("eve") is None


def test_adding_items_says_plainly_that_it_is_not_available(client):
    reply = client.post("/v1/items", json={"items": [{"id": "x", "title": "A lamp"}]},
                        headers={"X-API-Key": ADMIN})
    assert reply.status_code == 501 and "retrain" in reply.json()["error"]


def test_similar_items_by_item_embedding_cosine(client, rec):
    reply = client.get("/v1/items/i00001/similar", params={"k": 4}).json()
    sims = [s["similarity"] for s in reply["similar"]]
    assert len(sims) == 4 and sims == sorted(sims, reverse=True)
    assert "i00001" not in [s["item"] for s in reply["similar"]]
    table = rec.model_.output_table().detach().numpy()
    a, b = table[1], table[rec.items_.index_of(reply["similar"][0]["item"])]
    assert sims[0] == pytest.approx(float(a @ b / ((a @ a) ** 0.5 * (b @ b) ** 0.5)), abs=1e-5)
    assert client.get("/v1/items/nope/similar").status_code == 404


def test_keys_are_required_where_set(client):
    wrong = client.get("/v1/users/x/recommendations", headers={"X-API-Key": "guess"})
    assert wrong.status_code == 403 and "wrong key" in wrong.json()["error"]
    del client.headers["X-API-Key"]
    missing = client.get("/v1/users/x/recommendations")
    assert missing.status_code == 401 and "X-API-Key" in missing.json()["error"]
    assert client.post("/v1/events", json=events("x", ["i00001"])).status_code == 401
    assert client.get("/healthz").status_code == 200


def test_limits_on_body_size_and_batch_size(client, store):
    big = client.post("/v1/events", content=b"{" + b" " * 30_000 + b"}",
                      headers={"content-type": "application/json"})
    assert big.status_code == 413 and "limit" in big.json()["error"]
    many = client.post("/v1/events", json=events("fay", ["i00001"] * 21))
    assert many.status_code == 413 and "20" in many.json()["error"]
    assert store.event_count("fay") == 0


def test_validation_errors_name_the_field(client):
    reply = client.post("/v1/events", json={"events": [{"user": "g", "item": 5}]})
    assert reply.status_code == 422
    message = reply.json()["error"]
    assert "events[0].item" in message and "events[0].timestamp is required" in message


def test_metrics_are_prometheus_text(client):
    client.post("/v1/events", json=events("hal", ["i00001", "zzz"]))
    client.post("/v1/events", json=events("hal", ["i00001", "zzz"]))
    assert client.get("/metrics").status_code == 403  # the client key is not enough
    text = client.get("/metrics", headers={"X-API-Key": ADMIN}).text
    assert "# TYPE prismrec_http_request_seconds histogram" in text
    assert 'route="/v1/events",status="200"} 2.0' in text
    assert "prismrec_events_ingested_total 2.0" in text
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines()
                 if line.startswith("prismrec_e") and "_created" not in line)
    assert [float(v) for k, v in lines.items() if "duplicate" in k] == [2.0]
    assert [float(v) for k, v in lines.items() if "unknown_item" in k] == [2.0]  # as received


def test_operational_routes_need_the_admin_key_and_healthz_says_only_ok(client):
    for path in ("/docs", "/openapi.json", "/metrics", "/redoc"):
        assert client.get(path).status_code == 403, path  # the client key
    del client.headers["X-API-Key"]
    for path in ("/docs", "/openapi.json", "/metrics", "/redoc"):
        reply = client.get(path)
        assert reply.status_code == 401 and "admin key" in reply.json()["error"], path
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}


def test_openapi_docs_are_served(client):
    client.headers["X-API-Key"] = ADMIN
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/v1/events", "/v1/users/{user}/recommendations", "/v1/items/{item}/similar",
            "/v1/users/{user}/profile", "/v1/users/{user}", "/v1/items", "/healthz",
            "/metrics"} <= set(paths)


def test_settings_round_trip_and_refuse_weak_keys():
    s = ServeSettings(api_key="a-long-key", max_batch=5)
    assert ServeSettings.from_dict(s.to_dict()) == s
    assert "a-long-key" not in repr(s)
    with pytest.raises(ValueError, match="api_key"):
        ServeSettings(api_key="short").validate()
    with pytest.raises(ValueError, match="unknown"):
        ServeSettings.from_dict({"max_batchh": 3})
