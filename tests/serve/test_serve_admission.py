"""Real servers on 127.0.0.1: the age limit on logged events, dashboard logins limited per
client address, and the dashboard key of ``prismrec ui`` from a file, never the command line."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from ui_server import ADMIN, CLIENT, DASHBOARD, UiServer

from prismrec.cli import build_parser
from prismrec.profile import open_store
from prismrec.profile.live import LiveProfiles
from prismrec.recommender import Recommender

pytestmark = pytest.mark.slow  # server processes
DAY = 86_400.0


@pytest.fixture
def started():
    servers: list[UiServer] = []
    yield servers
    for s in servers:
        s.stop()


def login_form(c: httpx.Client) -> str:
    form = c.get("/ui/login")
    assert form.status_code == 200
    return re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)


def try_login(c: httpx.Client, key: str) -> httpx.Response:
    return c.post("/ui/login", data={"csrf": login_form(c), "key": key, "next": "/ui"})


def events(user: str, times: list[float], tag: str) -> dict:
    return {"events": [{"user": user, "item": f"i{7 * j % 60:05d}", "timestamp": t,
                        "event_id": f"{tag}-{j}"} for j, t in enumerate(times)]}


@pytest.mark.parametrize("kind", ["sqlite", "redis"])
def test_events_older_than_the_age_limit_are_not_stored_counted_and_never_in_a_profile(
        kind, tiny_checkpoint, tmp_path, started, request):
    url = (request.getfixturevalue("redis_url") if kind == "redis"  # skips, saying why
           else f"sqlite:///{tmp_path / 'age.db'}")
    server = UiServer(tiny_checkpoint, tmp_path / "age.log", url,
                      extra=("--max-event-age", "30d", "--max-user-events", "4")).wait_ready()
    started.append(server)
    user = f"aged-{kind}"
    now = time.time()
    with server.api() as api:
        first = api.post("/v1/events", json=events(
            user, [now - 40 * DAY, now - 29 * DAY, now - 31 * DAY, now - DAY, now - 60], "a"))
        assert first.status_code == 200, first.text
        got = first.json()
        assert (got["accepted"], got["too_old"], got["over_quota"]) == (3, 2, 0)
        # the dropped events took no room under the quota of 4: one more fits, not two
        second = api.post("/v1/events", json=events(user, [now - 30, now - 20], "b")).json()
        assert (second["accepted"], second["too_old"], second["over_quota"]) == (1, 0, 1)
        served = {it["item"]: it["score"] for it in api.get(
            f"/v1/users/{user}/recommendations", params={"k": 60}).json()["items"]}
        profile = api.get(f"/v1/users/{user}/profile").json()
        metrics = api.get("/metrics", headers={"X-API-Key": ADMIN}).text
    assert re.search(r"^prismrec_events_too_old_total 2\.0$", metrics, re.M), metrics
    assert re.search(r"^prismrec_events_over_quota_total 1\.0$", metrics, re.M)
    assert profile["event_count"] == 4
    with open_store(url) as store:
        logged = store.events(user)
        assert [e.event_id for e in logged] == ["a-1", "a-3", "a-4", "b-0"]
        assert min(e.timestamp for e in logged) >= now - 30 * DAY
        assert store.get_state(user).n_events == store.event_count(user) == 4
        # the state the service folded equals one rebuilt from what the log holds
        live = LiveProfiles(Recommender.load(tiny_checkpoint), store)
        live.rebuild(user)
        rebuilt = live.recommend(user, k=60)
    assert set(served) == set(rebuilt["item"])
    np.testing.assert_allclose([served[i] for i in rebuilt["item"]], rebuilt["score"],
                               atol=1e-5)


def test_the_age_limit_reads_units_and_a_bad_one_is_refused_with_a_message(tmp_path):
    def age(text: str) -> float:
        return build_parser().parse_args(["serve", "--checkpoint", "c", "--store", "s",
                                          "--max-event-age", text]).max_event_age

    assert (age("90d"), age("12h"), age("30m"), age("2w"), age("45")) == (
        90 * DAY, 12 * 3600.0, 1800.0, 14 * DAY, 45.0)
    for bad in ("90x", "-1d", "nan", "d", "infd"):
        done = subprocess.run([sys.executable, "-m", "prismrec.cli", "serve", "--checkpoint",
                               str(tmp_path), "--store", "sqlite:///x.db",
                               f"--max-event-age={bad}"], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 2, bad
        assert "is not a duration" in done.stderr and "Traceback" not in done.stderr, bad


def test_dashboard_logins_are_limited_per_client_address_before_the_key_is_compared(
        tiny_checkpoint, tmp_path, started):
    server = UiServer(tiny_checkpoint, tmp_path / "login.log", f"sqlite:///{tmp_path / 'l.db'}",
                      extra=("--login-burst", "3", "--login-rate", "0.02")).wait_ready()
    started.append(server)
    with httpx.Client(base_url=server.url, timeout=30) as here:
        for _ in range(3):  # the burst: wrong keys are answered as wrong keys
            assert try_login(here, "not-the-key-0").status_code == 403
        refused = try_login(here, DASHBOARD)  # the right key, but no token left
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) >= 1
        assert "too many login attempts" in refused.text
        assert "prismrec_ui" not in refused.cookies  # no session
        assert here.get("/ui").status_code == 303  # still sent to the login form
    # another address has its own bucket (127.0.0.2 is loopback too)
    other = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=server.url, timeout=30, transport=other) as there:
        assert try_login(there, DASHBOARD).status_code == 303
        assert there.get("/ui").status_code == 200


def test_prismrec_ui_takes_its_key_from_a_private_file_never_an_argument(
        tiny_checkpoint, tmp_path, started):
    key_file = tmp_path / "dashboard.key"
    key_file.write_text(DASHBOARD + "\n")
    key_file.chmod(0o644)
    base = [sys.executable, "-m", "prismrec.cli", "ui", "--checkpoint", str(tiny_checkpoint)]
    shared = subprocess.run([*base, "--key-file", str(key_file)], capture_output=True,
                            text=True, timeout=60)
    assert shared.returncode != 0 and "can be read by other users" in shared.stderr
    assert "chmod 600" in shared.stderr and "Traceback" not in shared.stderr
    for flag in ("--key", "--key="):  # no flag takes the key itself, not even abbreviated
        args = [*base, flag + DASHBOARD] if flag.endswith("=") else [*base, flag, DASHBOARD]
        refused = subprocess.run(args, capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and "unrecognized arguments" in refused.stderr
    key_file.chmod(0o600)
    server = UiServer(tiny_checkpoint, tmp_path / "ui.log", command="ui", env={},
                      extra=("--key-file", str(key_file), "--login-burst", "2")).wait_ready()
    started.append(server)
    with httpx.Client(base_url=server.url, timeout=30) as c:
        assert try_login(c, CLIENT).status_code == 403  # the file's key, not another
        assert try_login(c, DASHBOARD).status_code == 303
        assert c.get("/ui").status_code == 200
        assert try_login(c, DASHBOARD).status_code == 429  # limited here too


@pytest.mark.parametrize("workers", [1, 2])
def test_with_an_admin_port_the_operational_routes_answer_there_only(
        workers, tiny_checkpoint, tmp_path, started):
    from ui_server import free_port

    admin_port = free_port()
    server = UiServer(tiny_checkpoint, tmp_path / "ops.log", f"sqlite:///{tmp_path / 'o.db'}",
                      extra=("--admin-port", str(admin_port), "--workers", str(workers))
                      ).wait_ready()
    started.append(server)
    ops = ("/metrics", "/docs", "/redoc", "/openapi.json")
    n = 6
    for j in range(n):  # a new connection each: with 2 workers both answer some
        with httpx.Client(base_url=server.url, timeout=30, headers={"X-API-Key": ADMIN}) as main:
            assert main.post("/v1/events", json=events(f"p{j}", [time.time()], "p")
                             ).status_code == 200
            r = main.get(ops[j % len(ops)])
            assert r.status_code == 404 and "admin port" in r.json()["error"], r.text
            assert main.get("/healthz").status_code == 200
            assert main.get("/ui/login").status_code == 200
    admin_url = f"http://127.0.0.1:{admin_port}"
    with httpx.Client(base_url=admin_url, timeout=30) as anyone:
        assert anyone.get("/metrics").status_code == 401  # still behind the admin key
    for _ in range(2 * workers):  # whichever worker answers, it counts every worker's events
        with httpx.Client(base_url=admin_url, timeout=30, headers={"X-API-Key": ADMIN}) as a:
            metrics = a.get("/metrics")
            assert metrics.status_code == 200
            assert re.search(rf"^prismrec_events_ingested_total {float(n)}$", metrics.text,
                             re.M), metrics.text[-2000:]
    with httpx.Client(base_url=admin_url, timeout=30, headers={"X-API-Key": ADMIN}) as admin:
        assert admin.get("/openapi.json").json()["paths"]["/v1/events"]
        docs = admin.get("/docs")
        assert docs.status_code == 200
        asset = re.search(r'src="(/docs-assets/[^"]+)"', docs.text).group(1)
        assert admin.get(asset).status_code == 200  # the page's files come from here too
        for path in ("/v1/users/p0/recommendations", "/healthz", "/ui/login", "/v1/events"):
            r = admin.get(path)
            assert r.status_code == 404 and "admin port" in r.json()["error"], path


def test_an_admin_port_on_the_main_port_is_refused(tiny_checkpoint, tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "prismrec.cli", "serve", "--checkpoint", str(tiny_checkpoint),
         "--store", f"sqlite:///{tmp_path / 'r.db'}", "--port", "8123", "--admin-port", "8123"],
        capture_output=True, text=True, timeout=60)
    assert done.returncode != 0 and "other than --port 8123" in done.stderr, done.stderr


def test_the_age_cutoff_keeps_an_event_exactly_at_the_limit_and_settings_refuse_bad_values():
    from prismrec.profile.store import Event
    from prismrec.serve import ServeSettings
    from prismrec.serve.limits import drop_too_old

    evs = [Event("u", "i", t) for t in (89.5, 90.0, 150.0, 80.0)]
    kept, dropped = drop_too_old(evs, max_age=10.0, now=100.0)
    assert [e.timestamp for e in kept] == [90.0, 150.0] and dropped == 2
    for field, bad in (("max_event_age", -1.0), ("max_event_age", float("inf")),
                       ("login_rate", -0.1), ("login_burst", 0), ("admin_port", 70_000)):
        with pytest.raises(ValueError, match=field):
            ServeSettings(**{field: bad}).validate()
