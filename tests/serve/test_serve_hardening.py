"""Service hardening in process (TestClient): ids every route can read and erase, keys checked
before the body, limits that answer 413/429/503 with a reason, errors that leak nothing."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from prismrec.profile import open_store
from prismrec.profile.live import LiveProfiles
from prismrec.profile.store import StoreUnavailableError
from prismrec.recommender import Recommender
from prismrec.serve import ServeSettings, create_app
from prismrec.serve.gate import Gate
from prismrec.serve.limits import RateLimiter

CLIENT, ADMIN = "client-key-123", "admin-key-456"
T0 = 1_700_000_000.0
NFC, NFD = "Ren\u00e9e", "Rene\u0301e"


@pytest.fixture(scope="module")
def rec(tiny_checkpoint) -> Recommender:
    return Recommender.load(tiny_checkpoint)


@pytest.fixture
def store(tmp_path):
    with open_store(f"sqlite:///{tmp_path / 'h.db'}") as s:
        yield s


def make(rec, store, **settings) -> TestClient:
    s = ServeSettings(api_key=CLIENT, admin_key=ADMIN, **settings)
    c = TestClient(create_app(LiveProfiles(rec, store), s))
    c.headers["X-API-Key"] = CLIENT
    return c


@pytest.fixture
def client(rec, store):
    with make(rec, store) as c:
        yield c


def post(client, user, eid="e1", **kw):
    return client.post("/v1/events", json={"events": [
        {"user": user, "item": "i00001", "timestamp": T0, "event_id": eid}]}, **kw)


@pytest.mark.parametrize("bad", [
    "alice/smith", " alice", "alice ", "al\r\nice", "al\x07ice", "\u202eecila", "al\u200bice",
    "al\u2066ice", "\ufeffalice"])
def test_ids_that_could_not_be_erased_or_would_alias_are_refused_at_ingest(client, store, bad):
    reply = post(client, bad)
    assert reply.status_code == 422 and "events[0].user" in reply.json()["error"]
    reply = post(client, "fine", eid=bad)
    assert reply.status_code == 422 and "events[0].event_id" in reply.json()["error"]
    assert list(store.users()) == []


@pytest.mark.parametrize("user", ["zoë 👩🚀", "a%zz", "a+b", "a?b#c", "ünï cödé", "x" * 1024,
                                  "Ω≈ç√", "back\\slash", "'; DROP TABLE events; --"])
def test_every_id_that_can_be_stored_can_be_read_and_erased_over_http(client, store, user):
    assert post(client, user).status_code == 200
    path = quote(user, safe="")
    assert client.get(f"/v1/users/{path}/profile").json()["event_count"] == 1
    assert client.get(f"/v1/users/{path}/recommendations").status_code == 200
    done = client.delete(f"/v1/users/{path}", headers={"X-API-Key": ADMIN})
    assert done.status_code == 200 and done.json()["erased"] is True, done.text
    assert store.event_count(user) == 0 and list(store.users()) == []


def test_nfc_and_nfd_are_one_user_on_every_route(client, store):
    assert post(client, NFD, eid="a").json()["accepted"] == 1
    assert post(client, NFC, eid="a").json()["duplicates"] == 1
    assert list(store.users()) == [NFC]
    assert client.get(f"/v1/users/{quote(NFD)}/profile").json()["event_count"] == 1
    gone = client.delete(f"/v1/users/{quote(NFD)}", headers={"X-API-Key": ADMIN}).json()
    assert gone["erased"] is True and gone["user"] == NFC and store.event_count(NFC) == 0


def test_an_invalid_percent_escape_is_refused_so_two_paths_never_name_one_user(client, store):
    post(client, "a%zz")
    assert client.get("/v1/users/a%25zz/profile").status_code == 200
    for raw in ("/v1/users/a%zz/profile", "/v1/users/a%2/profile", "/v1/users/%/profile"):
        reply = client.get(raw)
        assert reply.status_code == 400 and "percent-escape" in reply.json()["error"], raw


def test_one_users_event_id_never_suppresses_anothers(client, store):
    assert post(client, "ann", eid="order-1").json()["accepted"] == 1
    other = post(client, "bob", eid="order-1").json()
    assert (other["accepted"], other["duplicates"]) == (1, 0)  # nothing to learn about ann
    assert store.event_count("bob") == 1


def test_the_key_is_checked_before_the_body_is_read(client):
    del client.headers["X-API-Key"]
    for body in (b"{not json", b"\xff" * 500_000):
        reply = client.post("/v1/events", content=body,
                            headers={"content-type": "application/json"})
        assert reply.status_code == 401, reply.text
    wrong = client.post("/v1/events", content=b"{", headers={"X-API-Key": "wrong-key-0"})
    assert wrong.status_code == 403
    assert client.delete("/v1/users/x", headers={"X-API-Key": CLIENT}).status_code == 403


def test_a_gate_refusal_never_reads_the_body():
    reads = []

    async def app(scope, receive, send):  # pragma: no cover - must not be reached
        reads.append(await receive())

    gate = Gate(app, ServeSettings(api_key=CLIENT, admin_key=ADMIN))
    sent = []

    async def receive():
        reads.append("read")
        return {"type": "http.request", "body": b"{", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/events", "raw_path": b"/v1/events",
             "headers": []}
    asyncio.run(gate(scope, receive, send))
    assert sent[0]["status"] == 401 and reads == []


def test_an_oversized_batch_is_refused_by_its_length_before_its_events(rec, store):
    with make(rec, store, max_batch=1000, max_body_bytes=2_000_000) as client:
        ev = {"user": "u", "item": "i00001", "timestamp": T0}
        body = json.dumps({"events": [ev] * 13_000}).encode()
        bad_tail = json.dumps({"events": [ev] * 1_000 + [{"user": 5}]}).encode()
        reply = client.post("/v1/events", content=body,
                            headers={"content-type": "application/json"})
        assert reply.status_code == 413 and "13000" in reply.json()["error"]
        assert "1000" in reply.json()["error"]
        # one error about the length, not 13,000 about events never looked at
        assert client.post("/v1/events", content=bad_tail, headers={
            "content-type": "application/json"}).status_code == 413
        assert store.event_count("u") == 0


def test_the_rate_limit_answers_429_with_retry_after_per_key(rec, store):
    with make(rec, store, rate_limit=1.0, rate_burst=3) as client:
        codes = [client.get("/v1/users/x/recommendations").status_code for _ in range(5)]
        assert codes == [200, 200, 200, 429, 429]
        refused = client.get("/v1/users/x/recommendations")
        assert int(refused.headers["Retry-After"]) >= 1 and "rate limit" in refused.json()["error"]
        admin = client.get("/v1/users/x/recommendations", headers={"X-API-Key": ADMIN})
        assert admin.status_code == 200  # another key, another bucket
        assert client.get("/healthz").status_code == 200  # open routes are not counted
        metrics = client.get("/metrics", headers={"X-API-Key": ADMIN}).text
        assert "prismrec_requests_refused_total 3.0" in metrics


def test_a_token_bucket_refills_at_its_rate():
    now = [0.0]
    limiter = RateLimiter(2.0, 2, clock=lambda: now[0])
    assert [limiter.retry_after("k") for _ in range(3)] == [0, 0, 1]
    now[0] = 0.5  # one token back
    assert limiter.retry_after("k") == 0 and limiter.retry_after("k") == 1
    assert limiter.retry_after("other") == 0


def test_requests_over_the_in_flight_limit_get_503_and_retry_after():
    started, release = asyncio.Event(), asyncio.Event()

    async def slow(scope, receive, send):
        started.set()
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    gate = Gate(slow, ServeSettings(max_concurrent=1))
    scope = {"type": "http", "method": "GET", "path": "/v1/users/a/profile",
             "raw_path": b"/v1/users/a/profile", "headers": []}

    async def run():
        first, second = [], []

        async def nothing():
            return {"type": "http.request", "body": b""}

        async def collect(out, m):
            out.append(m)

        task = asyncio.create_task(gate(scope, nothing, lambda m: collect(first, m)))
        await started.wait()
        await gate(scope, nothing, lambda m: collect(second, m))
        release.set()
        await task
        return first, second

    first, second = asyncio.run(run())
    assert first[0]["status"] == 200
    assert second[0]["status"] == 503 and (b"retry-after", b"1") in second[0]["headers"]


def test_errors_never_carry_paths_hosts_or_exception_text(rec, store, tmp_path, monkeypatch):
    with make(rec, store) as client:
        def down(*a, **k):
            raise StoreUnavailableError(f"Redis store 10.1.2.3:6379/0 at {tmp_path}: refused")

        monkeypatch.setattr(store, "get_states", down)
        monkeypatch.setattr(store, "get_state", down)
        monkeypatch.setattr(store, "event_count", down)
        for path in ("/v1/users/u0001/recommendations", "/v1/users/u0001/profile", "/healthz"):
            reply = client.get(path)
            assert reply.status_code == 503, (path, reply.text)
            assert "10.1.2.3" not in reply.text and str(tmp_path) not in reply.text
            assert "refused" not in reply.text and "retry" in reply.json()["error"]


def test_the_batch_limit_is_in_the_published_schema(client):
    doc = client.get("/openapi.json", headers={"X-API-Key": ADMIN}).json()
    ref = doc["paths"]["/v1/events"]["post"]["requestBody"]["content"]["application/json"]
    name = ref["schema"]["$ref"].rsplit("/", 1)[1]
    assert doc["components"]["schemas"][name]["properties"]["events"]["maxItems"] == 1000



def test_a_users_log_stops_at_the_quota_and_what_is_dropped_is_counted(rec, store):
    with make(rec, store, max_user_events=5) as client:
        def send(user, n, start):
            return client.post("/v1/events", json={"events": [
                {"user": user, "item": "i00001", "timestamp": T0 + start + j,
                 "event_id": f"{user}-{start + j}"} for j in range(n)]}).json()

        first = send("q", 3, 0)
        assert (first["accepted"], first["over_quota"]) == (3, 0)
        second = send("q", 4, 10)  # two fit, two do not
        assert (second["accepted"], second["over_quota"]) == (2, 2)
        mixed = client.post("/v1/events", json={"events": [
            {"user": "q", "item": "i00002", "timestamp": T0 + 99},
            {"user": "other", "item": "i00002", "timestamp": T0 + 99}]}).json()
        assert (mixed["accepted"], mixed["over_quota"]) == (1, 1)
        assert store.event_count("q") == 5 and store.event_count("other") == 1
        metrics = client.get("/metrics", headers={"X-API-Key": ADMIN}).text
        assert "prismrec_events_over_quota_total 3.0" in metrics


@pytest.mark.parametrize("command", [["serve", "--store", "sqlite:///p.db"], ["ui"]])
def test_no_key_goes_on_a_command_line_neither_in_a_flag_nor_in_the_docs(command, capsys):
    """Finding 7: a key given as an argument is visible in ``ps``. No flag takes one (not
    even abbreviated), and no command line in the README or docs/ shows one."""
    from prismrec.cli import build_parser

    parser = build_parser()
    for flag in ("--api-key", "--admin-key", "--dashboard-key", "--key"):
        for args in ([flag, "k3y-value-123"], [f"{flag}=k3y-value-123"]):
            with pytest.raises(SystemExit) as refused:
                parser.parse_args([*command, "--checkpoint", "ckpt", *args])
            assert refused.value.code == 2
            assert "unrecognized arguments" in capsys.readouterr().err
    root = Path(__file__).resolve().parents[2]
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        text = doc.read_text(encoding="utf-8")
        shown = re.findall(r"--(?:api|admin|dashboard)-key(?!-file)\b[ =]\S+", text)
        assert not shown, f"{doc.name} puts a key on a command line: {shown}"
