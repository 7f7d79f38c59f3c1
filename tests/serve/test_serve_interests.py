"""The decomposition over HTTP, through ``prismrec serve`` on 127.0.0.1 (a real SQLite file;
Redis too for stored preferences): the profile document, explained lists equal to the
library's, mute/boost per request and as a stored preference that survives a restart and
goes with DELETE."""

from __future__ import annotations

import time

import pytest
from ui_server import ADMIN, UiServer, build_checkpoint

from prismrec.recommender import Recommender
from prismrec.recommender.core import DEFAULT_DIVERSITY

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return build_checkpoint(tmp_path_factory.mktemp("interests") / "gru")


@pytest.fixture(scope="module")
def rec(checkpoint) -> Recommender:
    return Recommender.load(checkpoint)


@pytest.fixture(scope="module")
def user(rec) -> str:
    """A training user with at least three interests (so one can be muted, one boosted)."""
    return next(u for u in rec.users_.to_list() if len(rec.profile(u)) >= 3)


@pytest.fixture(scope="module")
def server(checkpoint, tmp_path_factory):
    folder = tmp_path_factory.mktemp("interests-serve")
    s = UiServer(checkpoint, folder / "serve.log", f"sqlite:///{folder / 'p.db'}").wait_ready()
    yield s
    s.stop()


def get(server, path: str, **params):
    with server.api() as api:
        r = api.get(path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_the_profile_is_the_library_profile_document_plus_what_is_stored(server, rec, user):
    doc = get(server, f"/v1/users/{user}/profile")
    want = rec.profile(user).to_dict()
    assert doc["interests"] == want["interests"] and doc["components"] == want["components"]
    assert doc["n_events"] == want["n_events"] and doc["fallback"] is None
    # how the interests were found: the synthetic shop has categories, so the default routes
    # the decay head by them, and the checkpoint carries that choice to the server
    assert doc["routing"] == want["routing"] == "categories"
    first = doc["interests"][0]
    assert {"id", "label", "weight", "horizon", "first_seen", "last_seen"} <= set(first)
    assert first["top_items"][0]["title"] == rec.catalog_.rows(
        [first["top_items"][0]["id"]])["title"].iloc[0]
    # the fields clients had before stay
    assert doc["known_from_training"] is True and doc["event_count"] == 0
    assert doc["training_events"] == want["n_events"] and doc["preferences"] == []
    timed = get(server, f"/v1/users/{user}/profile", timeline="true")
    assert timed["interests"] == rec.profile(user).to_dict(timeline=True)["interests"]
    assert len(timed["events"]) == len(timed["interests"][0]["timeline"]) == doc["n_events"]


def test_the_profile_reads_the_events_logged_since(server, rec):
    user = "fresh-profile-user"
    with server.api() as api:
        api.post("/v1/events", json={"events": [
            {"user": user, "item": it, "timestamp": time.time() + j}
            for j, it in enumerate(["i00001", "i00002", "i00003", "not-an-item"])]})
        doc = api.get(f"/v1/users/{user}/profile", params={"timeline": "true"}).json()
        assert doc["event_count"] == 4 and doc["n_events"] == 3  # unknown items: not read
        assert [e["item"] for e in doc["events"]] == ["i00001", "i00002", "i00003"]
        assert doc["recent_events"][0]["title"] == rec.catalog_.rows(["i00001"])["title"].iloc[0]
        assert sum(i["weight"] for i in doc["interests"]) == pytest.approx(1.0)
        api.post("/v1/events", json={"events": [
            {"user": "only-unknown", "item": "nothing-known", "timestamp": time.time()}]})
        empty = api.get("/v1/users/only-unknown/profile").json()
        assert empty["interests"] == [] and "no interests yet" in empty["note"]
        assert api.get("/v1/users/nobody-here/profile").status_code == 404


def test_plain_lists_carry_titles_and_say_what_their_reason_is(server, rec, user):
    reply = get(server, f"/v1/users/{user}/recommendations", k=5)
    assert reply["explained"] is False and reply["composed"] is False
    titles = rec.catalog_.rows([it["item"] for it in reply["items"]])["title"].tolist()
    assert [it["title"] for it in reply["items"]] == titles
    for it in reply["items"]:
        assert it["interest"] is None
        if it["because"] is not None:  # the nearest recent item, named by its title
            assert it["because"]["title"] in it["reason"]


def test_explain_true_gives_the_librarys_interests_labels_and_reasons(server, rec, user):
    reply = get(server, f"/v1/users/{user}/recommendations", k=6, explain="true")
    want = rec.recommend(user, k=6, explain=True)
    assert reply["explained"] is True and reply["components"] == want.attrs["components"]
    got = [(it["item"], it["title"], it["interest"], it["interest_label"], it["reason"])
           for it in reply["items"]]
    assert got == list(zip(want["item"], want["title"], want["interest"],
                           want["interest_label"], want["reason"], strict=True))
    assert all("because you viewed" in it["reason"] for it in reply["items"])


def test_mute_and_boost_per_request_compose_the_librarys_list(server, rec, user):
    url = f"/v1/users/{user}/recommendations"
    ids = [i.component for i in rec.profile(user).interests]
    top, other = ids[0], ids[-1]
    muted = get(server, url, k=10, mute=str(top))
    want = rec.recommend(user, k=10, mute=[top])
    assert muted["composed"] is True and muted["diversity"] == DEFAULT_DIVERSITY
    assert [it["item"] for it in muted["items"]] == want["item"].tolist()
    assert top not in {it["interest"] for it in muted["items"]}
    assert muted["steering"] == {"mute": [top], "boost": [], "from_store": [],
                                 "ignored_stored": []}
    plain = get(server, url, k=10, boost=str(top), diversity=0.0)
    boosted = get(server, url, k=10, boost=str(other), diversity=0.0)
    share = sum(it["interest"] == other for it in boosted["items"])
    assert share >= sum(it["interest"] == other for it in plain["items"])
    assert [it["item"] for it in boosted["items"]] == rec.recommend(
        user, k=10, boost=[other], diversity=0.0)["item"].tolist()
    with server.api() as api:
        unknown = api.get(url, params={"mute": "77"})
        assert unknown.status_code == 422 and "has interests" in unknown.json()["error"]
        both = api.get(url, params={"mute": str(top), "boost": str(top)})
        assert both.status_code == 422 and "both muted and boosted" in both.json()["error"]
        every = api.get(url, params={"mute": ",".join(map(str, ids))})
        assert every.status_code == 422 and "every interest" in every.json()["error"]
        bad = api.get(url, params={"mute": "first"})
        assert bad.status_code == 422 and "query.mute" in bad.json()["error"]


def _preference_round_trip(server_factory, rec, user):
    """PUT, GET, applied to plain requests, kept over a restart, erased by DELETE."""
    top = rec.profile(user).interests[0].component
    s = server_factory()
    with s.api() as api:
        put = api.put(f"/v1/users/{user}/interests/{top}", json={"mute": True})
        assert put.status_code == 200, put.text
        assert [(p["interest"], p["mute"], p["boost"]) for p in put.json()["preferences"]] \
            == [(top, True, False)]
        for body, code in (({"mute": True, "boost": True}, 422), ({"hide": True}, 422),
                           ({"mute": "yes"}, 422)):
            assert api.put(f"/v1/users/{user}/interests/{top}", json=body).status_code == code
        assert api.put(f"/v1/users/{user}/interests/99", json={"mute": True}).status_code == 404
        assert api.put("/v1/users/nobody-here/interests/0",
                       json={"mute": True}).status_code == 404
    s.stop()
    s = server_factory()  # a restart: the preference is in the store
    with s.api() as api:
        assert api.get(f"/v1/users/{user}/interests").json()["preferences"][0]["interest"] \
            == top
        reply = api.get(f"/v1/users/{user}/recommendations", params={"k": 10}).json()
        assert reply["composed"] is True and reply["steering"]["from_store"] == [top]
        assert top not in {it["interest"] for it in reply["items"]}
        assert [it["item"] for it in reply["items"]] == rec.recommend(
            user, k=10, mute=[top])["item"].tolist()
        # the request wins for the interest it names
        over = api.get(f"/v1/users/{user}/recommendations",
                       params={"k": 10, "boost": str(top)}).json()
        assert over["steering"]["boost"] == [top] and over["steering"]["from_store"] == []
        profile = api.get(f"/v1/users/{user}/profile").json()
        assert profile["preferences"][0]["mute"] is True
        gone = api.delete(f"/v1/users/{user}", headers={"X-API-Key": ADMIN})
        assert gone.status_code == 200 and gone.json()["erased"] is True
        assert api.get(f"/v1/users/{user}/interests").json()["preferences"] == []
        after = api.get(f"/v1/users/{user}/recommendations", params={"k": 10}).json()
        assert after["composed"] is False and after["steering"] is None
    s.stop()


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_a_stored_preference_steers_every_list_survives_a_restart_and_goes_with_delete(
        kind, checkpoint, rec, user, tmp_path, request):
    if kind == "redis":
        import redis

        url = request.getfixturevalue("redis_url")  # skips, saying why, without a server
        with redis.Redis.from_url(url) as r:
            r.flushdb()
        store = url
    else:
        store = f"sqlite:///{tmp_path / 'prefs.db'}"
    started: list[UiServer] = []

    def start() -> UiServer:
        started.append(UiServer(checkpoint, tmp_path / f"serve{len(started)}.log", store))
        return started[-1].wait_ready()

    try:
        _preference_round_trip(start, rec, user)
    finally:
        for s in started:
            s.stop()


def test_a_model_without_interest_head_steers_per_request_but_stores_nothing(
        tiny_checkpoint, tmp_path):
    rec = Recommender.load(tiny_checkpoint)
    user = rec.users_.ids([0])[0]
    s = UiServer(tiny_checkpoint, tmp_path / "serve.log",
                 f"sqlite:///{tmp_path / 'p.db'}").wait_ready()
    try:
        with s.api() as api:
            refused = api.put(f"/v1/users/{user}/interests/0", json={"mute": True})
            assert refused.status_code == 409 and "no interest head" in refused.json()["error"]
            doc = api.get(f"/v1/users/{user}/profile").json()
            assert doc["components"] == "kmeans" and "k-means" in doc["fallback"]
            first = doc["interests"][0]["id"]
            reply = api.get(f"/v1/users/{user}/recommendations",
                            params={"mute": str(first)}).json()
            assert reply["components"] == "kmeans"
            assert first not in {it["interest"] for it in reply["items"]}
    finally:
        s.stop()
