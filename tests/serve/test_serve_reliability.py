"""The service as real processes on 127.0.0.1: crashes, two servers on one store (Redis or
one SQLite file), hostile requests, and checkpoints it must refuse."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from safetensors.numpy import load as load_tensors

from prismrec.profile import open_store
from prismrec.profile.live import LiveProfiles
from prismrec.recommender import Recommender

pytestmark = pytest.mark.slow
CLIENT, ADMIN = "client-key-123", "admin-key-456"
T0 = 1_700_000_000.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``prismrec serve`` in a subprocess, with its output in a log file."""

    def __init__(self, checkpoint: Path, store: str, log: Path, *extra: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        self.log = log
        keys = []
        for flag, key in (("--api-key-file", CLIENT), ("--admin-key-file", ADMIN)):
            path = log.with_name(f"{log.stem}{flag}")
            path.write_text(key + "\n")
            path.chmod(0o600)
            keys += [flag, str(path)]
        self._out = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "prismrec.cli", "serve", "--checkpoint", str(checkpoint),
             "--store", store, "--port", str(self.port), *keys, *extra],
            stdout=self._out, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait_ready(self, timeout: float = 90.0) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: "
                                   + self.log.read_text())
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become ready: " + self.log.read_text())

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": CLIENT}, timeout=30)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)  # the whole group: uvicorn workers too
            self.proc.wait(timeout=30)
        self._out.close()


@pytest.fixture
def servers():
    started: list[Server] = []
    yield started
    for s in started:
        s.stop(signal.SIGKILL)


def batch(user: str, n: int, start: float, tag: str) -> dict:
    seed = sum(map(ord, tag))
    return {"events": [{"user": user, "item": f"i{(seed * 7 + j) % 60:05d}",
                        "timestamp": start + j, "event_id": f"{tag}-{j}"} for j in range(n)]}


def all_scores(client: httpx.Client, user: str) -> dict[str, float]:
    reply = client.get(f"/v1/users/{user}/recommendations", params={"k": 60})
    assert reply.status_code == 200, reply.text
    return {it["item"]: it["score"] for it in reply.json()["items"]}


def test_acknowledged_events_survive_kill_9_and_profiles_equal_a_rebuild(
        tiny_checkpoint, tmp_path, servers):
    url = f"sqlite:///{tmp_path / 'crash.db'}"
    server = Server(tiny_checkpoint, url, tmp_path / "a.log").wait_ready()
    servers.append(server)
    users = ["new-1", "new-2", "u0003", "u0010"]  # two unknown to the model, two trained
    acked: list[str] = []
    killer = threading.Timer(2.0, lambda: os.killpg(server.proc.pid, signal.SIGKILL))
    killer.start()
    with server.client() as client:
        for b in range(100_000):
            body = batch(users[b % 4], 5, T0 + 10 * b, f"b{b}")
            try:
                reply = client.post("/v1/events", json=body)
            except httpx.TransportError:
                break
            assert reply.status_code == 200
            acked += [e["event_id"] for e in body["events"]]
    killer.join()
    server.proc.wait(timeout=30)
    assert len(acked) >= 5
    # the documented restart after a crash: states an ingest left behind are stored first
    again = Server(tiny_checkpoint, url, tmp_path / "b.log", "--rebuild-stale").wait_ready()
    servers.append(again)
    with open_store(url) as store:
        stored = {e.event_id for u in users for e in store.events(u)}
        assert set(acked) <= stored
        with again.client() as client:
            served = {u: all_scores(client, u) for u in users}
        live = LiveProfiles(Recommender.load(tiny_checkpoint), store)
        for u in users:
            assert store.get_state(u).n_events == store.event_count(u)
            live.rebuild(u)
            rebuilt = live.recommend(u, k=60)
            got = served[u]
            assert set(got) == set(rebuilt["item"])
            np.testing.assert_allclose([got[i] for i in rebuilt["item"]], rebuilt["score"],
                                       atol=1e-5)


@pytest.mark.parametrize("kind", ["redis", "sqlite"])
def test_two_servers_on_one_store_lose_no_concurrent_event(kind, tiny_checkpoint, tmp_path,
                                                           servers, request):
    if kind == "redis":
        import redis

        url = request.getfixturevalue("redis_url")  # skips, saying why, without a server
        with redis.Redis.from_url(url) as r:
            r.flushdb()
    else:  # one file, several processes: WAL readers never wait, writers take turns
        url = f"sqlite:///{tmp_path / 'shared.db'}"
    a = Server(tiny_checkpoint, url, tmp_path / "a.log", "--workers", "2")
    b = Server(tiny_checkpoint, url, tmp_path / "b.log")
    servers += [a, b]
    a.wait_ready()
    b.wait_ready()
    n_threads, per_thread = 4, 20
    failures = []

    def post(t: int) -> None:
        with (a if t % 2 else b).client() as client:
            for j in range(per_thread):
                body = {"events": [{"user": u, "item": f"i{(t * 13 + j) % 60:05d}",
                                    "timestamp": T0 + j * 10 + t, "event_id": f"{u}{t}-{j}"}
                                   for u in ("shared", "u0005")]}
                reply = client.post("/v1/events", json=body)
                if reply.status_code != 200:
                    failures.append(reply.text)

    threads = [threading.Thread(target=post, args=(t,)) for t in range(n_threads)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not failures
    total = n_threads * per_thread
    with open_store(url) as store:
        for user in ("shared", "u0005"):
            assert store.event_count(user) == total
            assert len({e.event_id for e in store.events(user)}) == total
            state = store.get_state(user)
            assert state.n_events == total  # the last writer folded everything logged
            meta = load_tensors(state.blob)["meta"]  # format, folded, train, logged, late, ...
            assert meta[1] - meta[2] + meta[4] + meta[5] == total  # folded + late + unknown


def snapshot(store) -> dict:
    stats = {k: v for k, v in store.stats().items() if k != "file_bytes"}
    users = sorted(store.users())
    return {"stats": stats, "users": {u: (store.event_count(u), store.get_state(u))
                                      for u in users}}


def hostile_requests() -> list[tuple[str, str, dict]]:
    """(method, path, httpx keyword arguments): each must get a 4xx and change nothing."""
    good = {"user": "fuzz", "item": "i00001", "timestamp": T0, "event_id": "fz"}
    bad_values = {
        "user": [None, 5, "", "x" * 2000, ["a"], {"a": 1}, "nul\x00byte", "\ud800", True],
        "item": [None, 3.5, "", "y" * 5000, [], "\ud83d"],
        "timestamp": [None, "2024-01-01", -1, -1e12, 1e20, True, [1], "NaN"],
        "event": [None, "", "e" * 100, 7],
        "value": ["high", [1], {"v": 1}],
        "event_id": [5, "", "z" * 3000],
    }
    out: list[tuple[str, str, dict]] = []
    for field, values in bad_values.items():
        for v in values:
            ev = {**good, field: v}
            out.append(("POST", "/v1/events", {"json": {"events": [good, ev]}}))
    for field in ("user", "item", "timestamp"):
        out.append(("POST", "/v1/events",
                    {"json": {"events": [{k: v for k, v in good.items() if k != field}]}}))
    raw = [b"", b"{", b"null", b"[]", b'{"events": "all"}', b'{"events": [1, 2]}',
           b'{"events": [{"user": "a", "item": "b", "timestamp": NaN}]}',
           b'{"events": [{"user": "a", "item": "b", "timestamp": Infinity}]}',
           b'{"events": []', b"\xff\xfe\x00garbage", b'{"evil": true}',
           json.dumps({"events": [good], "extra": 1}).encode()]
    out += [("POST", "/v1/events", {"content": r, "headers": {"content-type": "application/json"}})
            for r in raw]
    out.append(("POST", "/v1/events", {"content": b'{"events": [' + b" " * 1_200_000 + b"]}",
                                       "headers": {"content-type": "application/json"}}))
    out.append(("POST", "/v1/events", {"json": {"events": [good] * 51}}))  # --max-batch 50
    out.append(("POST", "/v1/events", {"json": {"events": [good]},
                                       "headers": {"X-API-Key": "wrong-key-000"}}))
    out.append(("POST", "/v1/events", {"json": {"events": [good]}, "headers": {"X-API-Key": ""}}))
    for params in ({"k": 0}, {"k": "ten"}, {"k": 10_000}, {"diversity": -0.1},
                   {"diversity": "nan"}, {"diversity": 2}, {"exclude": ["x"] * 1001}):
        out.append(("GET", "/v1/users/seed-0/recommendations", {"params": params}))
    long_user = "u" * 2000
    out += [("GET", f"/v1/users/{long_user}/recommendations", {}),
            ("GET", "/v1/users/a%00b/profile", {}),
            ("GET", "/v1/users/never-seen/profile", {}),
            ("GET", "/v1/items/no-such-item/similar", {}),
            ("GET", "/v1/items/i00001/similar", {"params": {"k": -3}}),
            ("DELETE", "/v1/users/seed-0", {}),  # the client key is not the admin key
            ("DELETE", "/v1/users/seed-0", {"headers": {"X-API-Key": "wrong-admin-00"}}),
            ("PUT", "/v1/events", {"json": {"events": [good]}}),
            ("GET", "/v1/nothing-here", {})]
    return out


def test_hostile_requests_get_4xx_messages_and_change_nothing(tiny_checkpoint, tmp_path,
                                                              servers):
    url = f"sqlite:///{tmp_path / 'fuzz.db'}"
    server = Server(tiny_checkpoint, url, tmp_path / "s.log", "--max-batch", "50").wait_ready()
    servers.append(server)
    with server.client() as client, open_store(url) as store:
        for u in range(3):
            assert client.post("/v1/events", json=batch(f"seed-{u}", 4, T0, f"s{u}")
                               ).status_code == 200
        before = snapshot(store)
        requests = hostile_requests()
        rng = random.Random(7)  # plus random junk bodies
        for _ in range(40):
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
            requests.append(("POST", "/v1/events", {"content": junk, "headers": {
                "content-type": "application/json"}}))
        for method, path, kwargs in requests:
            reply = client.request(method, path, **_encoded(kwargs))
            assert 400 <= reply.status_code < 500, (method, path, kwargs, reply.text[:300])
            message = reply.json()["error"]
            assert isinstance(message, str) and len(message) > 5, reply.text
        assert snapshot(store) == before


def _encoded(kwargs: dict) -> dict:
    """JSON encoded here: lone surrogates and NaN must reach the server as sent."""
    if "json" not in kwargs:
        return kwargs
    kwargs = dict(kwargs)
    body = json.dumps(kwargs.pop("json")).encode("utf-8", "surrogatepass")
    return {**kwargs, "content": body,
            "headers": {"content-type": "application/json", **kwargs.get("headers", {})}}


NASTY_IDS = [
    "alice/smith", "../../etc/passwd", "..", ".", "%2e%2e", " lead", "trail ", "cr\rlf\n",
    "tab\there", "bell\x07", "del\x7f", "c1\x85", "\u202eevil", "iso\u2066late",
    "zero\u200bwidth", "zwj\u200d", "\ufeffbom", "line\u2028sep", "Rene\u0301e", "Ren\u00e9e",
    "'; DROP TABLE events; --", "' OR '1'='1", "\" OR 1=1 --", "robert'); DELETE FROM users;",
    "x" * 1025, "y" * 5000, "emoji 👩🚀", "ü" * 1024, "%zz", "%00", "a\x00b", "\ud800",
    "<script>alert(1)</script>", "${jndi:ldap://x}", "{{7*7}}", "null", "None", "0", "-1",
]
WRONG_KEYS = ["", "x", "wrong-key-000", CLIENT + "x", CLIENT.upper(), "a" * 5000,
              ADMIN[:-1], "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9".encode(),
              "' OR 1=1 --"]
BAD_TIMES = [float("nan"), float("inf"), -float("inf"), 1e30, -1e30, 1e308, "1e30", "NaN",
             None, True, [T0], {"t": T0}, -1, 4e9]


def hostile_suite(rng: random.Random) -> list[tuple[str, str, dict]]:
    """At least 500 requests over every class a review tried: bad JSON and types, huge
    bodies and batches, long, unicode and control-character ids, SQL-injection strings,
    path traversal, wrong keys, bad k, NaN and 1e30 timestamps, wrong methods."""
    out = hostile_requests()
    good = {"user": "fuzz", "item": "i00001", "timestamp": T0, "event_id": "fz"}
    for bad in NASTY_IDS:
        enc = quote(bad.encode("utf-8", "surrogatepass"), safe="")
        for field in ("user", "item", "event_id", "event"):
            out.append(("POST", "/v1/events", {"json": {"events": [{**good, field: bad}]}}))
        out += [("GET", f"/v1/users/{enc}/profile", {}),
                ("GET", f"/v1/users/{enc}/recommendations", {}),
                ("GET", "/v1/users/control/recommendations", {"params": {"exclude": enc}}),
                ("GET", f"/v1/items/{enc}/similar", {}),
                ("DELETE", f"/v1/users/{enc}", {"headers": {"X-API-Key": ADMIN}})]
        if bad.isprintable() and bad.isascii():  # as typed, unencoded
            out.append(("GET", f"/v1/users/{bad}/recommendations", {}))
    for key in WRONG_KEYS:
        for method, path in (("POST", "/v1/events"), ("GET", "/v1/users/control/profile"),
                             ("DELETE", "/v1/users/control"), ("GET", "/metrics"),
                             ("GET", "/openapi.json"), ("GET", "/docs")):
            out.append((method, path, {"json": {"events": [good]},
                                       "headers": {"X-API-Key": key}}))
    for t in BAD_TIMES:
        out.append(("POST", "/v1/events", {"json": {"events": [{**good, "timestamp": t}]}}))
        out.append(("POST", "/v1/events", {"json": {"events": [{**good, "value": t}]}}))
    for k in ("0", "-1", "1e30", "nan", "201", "10000000000000000000000", "", "k", "1.5"):
        out.append(("GET", "/v1/users/control/recommendations", {"params": {"k": k}}))
        out.append(("GET", "/v1/items/i00001/similar", {"params": {"k": k}}))
    for path in ("/../../etc/passwd", "/v1/users/..%2F..%2Fetc%2Fpasswd/profile",
                 "/v1/users/%2e%2e/profile", "/v1/../v1/users/control/profile/..",
                 "/v1/users/control/../../metrics", "/%2e%2e/%2e%2e/etc/shadow",
                 "/v1/users//profile", "/v1/users/control/profile%00.json",
                 "/v1/items/..%5c..%5cwin.ini/similar", "/docs/../openapi.json"):
        out += [("GET", path, {}), ("DELETE", path, {}),  # the client key: refused
                ("GET", path, {"headers": {"X-API-Key": ADMIN}})]
    for method in ("PUT", "PATCH", "TRACE"):
        for path in ("/v1/events", "/v1/users/control/profile", "/healthz", "/metrics"):
            out.append((method, path, {"json": {"events": [good]}}))
    ten_mb = b'{"events": [' + b" " * 10_000_000 + b"]}"
    huge = {"events": [{**good, "event_id": f"h{j}"} for j in range(100_000)]}
    out += [("POST", "/v1/events", {"content": ten_mb,
                                    "headers": {"content-type": "application/json"}}),
            ("POST", "/v1/events", {"json": huge}),
            ("POST", "/v1/events", {"json": {"events": [good] * 1000}}),  # over --max-batch 50
            ("POST", "/v1/events", {"content": iter([b'{"events": [' + b" " * 65536] * 40),
                                    "headers": {"content-type": "application/json"}})]
    while len(out) < 520:  # random junk and truncated JSON to make up the count
        body = json.dumps({"events": [good] * rng.randrange(1, 5)}).encode()
        cut = body[:rng.randrange(1, len(body))] if rng.random() < 0.5 else bytes(
            rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        out.append(("POST", "/v1/events", {"content": cut,
                                           "headers": {"content-type": "application/json"}}))
    return out


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_hostile_suite_no_5xx_no_traceback_and_the_control_user_is_untouched(
        kind, tiny_checkpoint, tmp_path, servers, request):
    if kind == "redis":
        import redis

        url = request.getfixturevalue("redis_url")  # skips, saying why, without a server
        with redis.Redis.from_url(url) as r:
            r.flushdb()
    else:
        url = f"sqlite:///{tmp_path / 'hostile.db'}"
    server = Server(tiny_checkpoint, url, tmp_path / "h.log", "--max-batch", "50").wait_ready()
    servers.append(server)
    requests = hostile_suite(random.Random(11))
    assert len(requests) >= 500
    with server.client() as client:
        assert client.post("/v1/events", json=batch("control", 6, T0, "ctl")).status_code == 200
        recs_before = client.get("/v1/users/control/recommendations", params={"k": 30}).content
        profile_before = client.get("/v1/users/control/profile").content
        statuses: dict[int, int] = {}
        for method, path, kwargs in requests:
            try:
                reply = client.request(method, path, **_encoded(kwargs))
            except httpx.TransportError:  # the server may close on a streamed oversized body
                assert "content" in kwargs and not isinstance(kwargs["content"], bytes), path
                continue
            statuses[reply.status_code] = statuses.get(reply.status_code, 0) + 1
            assert reply.status_code < 500, (method, path, reply.status_code, reply.text[:300])
            assert "Traceback" not in reply.text and 'File "' not in reply.text, reply.text
            assert str(tmp_path) not in reply.text and "127.0.0.1:" not in reply.text
        assert server.proc.poll() is None  # alive
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/v1/users/control/recommendations", params={"k": 30}
                          ).content == recs_before
        assert client.get("/v1/users/control/profile").content == profile_before
    assert sum(statuses.values()) >= 490 and max(statuses) < 500, statuses
    assert "Traceback" not in server.log.read_text(errors="replace")


def run_serve(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run([sys.executable, "-m", "prismrec.cli", "serve", *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def test_a_corrupt_checkpoint_is_refused_at_startup(tiny_checkpoint, tmp_path):
    bad = tmp_path / "corrupt"
    shutil.copytree(tiny_checkpoint, bad)
    weights = bad / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    out = run_serve("--checkpoint", str(bad), "--store", f"sqlite:///{tmp_path / 'x.db'}",
                    "--port", str(free_port()))
    assert out.returncode == 2
    assert "checksum" in out.stderr and "corrupt" in out.stderr


def test_a_checkpoint_of_another_format_version_is_refused(tiny_checkpoint, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(tiny_checkpoint, other)
    doc = json.loads((other / "checkpoint.json").read_text())
    doc["format_version"] = 99
    (other / "checkpoint.json").write_text(json.dumps(doc))
    out = run_serve("--checkpoint", str(other), "--store", f"sqlite:///{tmp_path / 'x.db'}",
                    "--port", str(free_port()))
    assert out.returncode == 2 and "format version 99" in out.stderr


def test_zero_workers_are_refused(tiny_checkpoint, tmp_path):
    out = run_serve("--checkpoint", str(tiny_checkpoint), "--store",
                    f"sqlite:///{tmp_path / 'x.db'}", "--workers", "0", timeout=60)
    assert out.returncode != 0 and "--workers must be at least 1" in out.stderr
    assert not (tmp_path / "x.db").exists()


def test_a_key_file_others_can_read_is_refused(tiny_checkpoint, tmp_path):
    key = tmp_path / "key"
    key.write_text("a-long-client-key\n")
    key.chmod(0o644)
    out = run_serve("--checkpoint", str(tiny_checkpoint), "--store",
                    f"sqlite:///{tmp_path / 'x.db'}", "--api-key-file", str(key), timeout=120)
    assert out.returncode != 0 and "chmod 600" in out.stderr
    assert "a-long-client-key" not in out.stderr


def test_workers_get_keys_from_a_private_file_and_metrics_add_up_over_workers(
        tiny_checkpoint, tmp_path, servers, redis_url):
    import redis

    with redis.Redis.from_url(redis_url) as r:
        r.flushdb()
    server = Server(tiny_checkpoint, redis_url, tmp_path / "w.log", "--workers", "2")
    servers.append(server)
    server.wait_ready()
    n = 24
    for b in range(n):  # a new connection each: both workers answer some
        body = batch(f"m{b % 3}", 2, T0 + b, f"m{b}")
        assert httpx.post(server.url + "/v1/events", json=body,
                          headers={"X-API-Key": CLIENT}).status_code == 200
    scrapes = [httpx.get(server.url + "/metrics", headers={"X-API-Key": ADMIN}).text
               for _ in range(4)]
    for text in scrapes:  # whichever worker answered, it counts every worker's events
        assert f"prismrec_events_ingested_total {2.0 * n}" in text, text[-2000:]
    children = subprocess.run(["pgrep", "-P", str(server.proc.pid)], capture_output=True,
                              text=True).stdout.split()
    assert children
    for pid in [server.proc.pid, *children]:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert CLIENT.encode() not in environ and ADMIN.encode() not in environ
