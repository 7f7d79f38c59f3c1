"""The dashboard over HTTP (no browser): who gets in, what the cookie holds, CSRF, where keys
never appear, the offline API docs, and the pages' content for a real user."""

from __future__ import annotations

import html
import re
import time
from urllib.parse import unquote

import httpx
import pytest
from ui_server import ADMIN, CLIENT, DASHBOARD, KEYS, UiServer, build_checkpoint

from prismrec.serve.ui.session import COOKIE

pytestmark = pytest.mark.slow  # a server process


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return build_checkpoint(tmp_path_factory.mktemp("ui-ckpt") / "gru")


@pytest.fixture(scope="module")
def server(checkpoint, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ui-serve")
    s = UiServer(checkpoint, folder / "serve.log", f"sqlite:///{folder / 'ui.db'}").wait_ready()
    yield s
    s.stop()


_OPEN: list[httpx.Client] = []


def client(url: str, **kw) -> httpx.Client:
    """An HTTP client closed after the test."""
    c = httpx.Client(base_url=url, timeout=30, **kw)
    _OPEN.append(c)
    return c


@pytest.fixture(autouse=True)
def _close_clients():
    yield
    while _OPEN:
        _OPEN.pop().close()


def api(server: UiServer) -> httpx.Client:
    return client(server.url, headers={"X-API-Key": CLIENT})


def login(url: str, key: str, next_path: str = "/ui") -> tuple[httpx.Client, httpx.Response]:
    c = client(url)
    form = c.get("/ui/login")
    assert form.status_code == 200
    token = re.search(r'name="csrf" value="([^"]+)"', form.text).group(1)
    return c, c.post("/ui/login", data={"csrf": token, "key": key, "next": next_path})


def text(page: str) -> str:
    """The page's text, tags dropped and entities decoded."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_pages_need_a_login_and_fragments_answer_401(server):
    c = client(server.url)
    for path in ("/ui", "/ui/users/u0003", "/ui/items", "/ui/live"):
        r = c.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?next=")
    for path in ("/ui/users/u0003/fragment", "/ui/users/u0003/version", "/ui/feed",
                 "/ui/fragments/overview"):
        r = c.get(path)
        assert r.status_code == 401 and "log in" in r.json()["error"]
    # the API key of a client opens no dashboard, in the header or in the form
    assert c.get("/ui", headers={"X-API-Key": ADMIN}).status_code == 303
    _, refused = login(server.url, CLIENT)
    assert refused.status_code == 403 and "does not open the dashboard" in refused.text


def test_the_admin_and_the_dashboard_key_log_in_with_a_signed_httponly_cookie(server):
    for key, role in ((DASHBOARD, "read-only"), (ADMIN, "admin")):
        c, r = login(server.url, key, "/ui/users/u0003")
        assert r.status_code == 303 and r.headers["location"] == "/ui/users/u0003"
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(COOKIE + "="))
        attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
        assert {"httponly", "samesite", "path"} <= attrs and "SameSite=strict" in cookie
        assert all(k not in cookie for k in KEYS)
        page = c.get("/ui")
        assert page.status_code == 200 and role in page.text
        assert "Content-Security-Policy" in page.headers


def test_a_forged_or_altered_cookie_is_refused(server):
    c, _ = login(server.url, DASHBOARD)
    value = c.cookies[COOKIE]
    role, expires, nonce, sig = value.split(".")
    for forged in (f"admin.{expires}.{nonce}.{sig}", f"{role}.{int(expires) + 99}.{nonce}.{sig}",
                   f"{role}.{expires}.{nonce}.{'0' * 64}", "garbage"):
        fresh = client(server.url, cookies={COOKIE: forged})
        assert fresh.get("/ui").status_code == 303, forged


def test_login_and_logout_need_their_csrf_token(server):
    c = client(server.url)
    c.get("/ui/login")
    r = c.post("/ui/login", data={"csrf": "made-up", "key": DASHBOARD})
    assert r.status_code == 403 and "form expired" in r.text and COOKIE not in r.cookies
    no_cookie = client(server.url).post(
        "/ui/login", data={"csrf": "x", "key": DASHBOARD})
    assert no_cookie.status_code == 403
    c, _ = login(server.url, DASHBOARD)
    assert c.post("/ui/logout", data={"csrf": "wrong"}).status_code == 403
    assert c.get("/ui").status_code == 200  # still logged in
    token = re.search(r'name="csrf" value="([^"]+)"', c.get("/ui").text).group(1)
    out = c.post("/ui/logout", data={"csrf": token})
    assert out.status_code == 303 and out.headers["location"] == "/ui/login"
    assert c.get("/ui").status_code == 303


def test_login_redirects_only_inside_the_dashboard(server):
    for target in ("https://evil.example/", "//evil.example/ui", "/v1/events"):
        _, r = login(server.url, DASHBOARD, target)
        assert r.status_code == 303 and r.headers["location"] == "/ui"


def test_the_user_page_shows_interests_titles_recommendations_and_new_events(server):
    c, _ = login(server.url, DASHBOARD)
    page = c.get("/ui/users/u0003")
    assert page.status_code == 200
    body = text(page.text)
    assert "Current interests" in body and "from the checkpoint's history, 0 logged since" in body
    assert "Orbit House" in body  # titles from the catalogue, not only ids
    assert re.search(r"because you viewed", body)
    assert 'id="diversity" type="range" min="0" max="1" step="0.05" value="0.25"' in page.text
    assert "(diversity 0.25)" in body  # the slider starts at the library's DEFAULT_DIVERSITY
    assert 'data-steer="mute"' in page.text and 'data-steer="boost"' in page.text
    assert "Storing them as the user's preference takes the admin key" in body
    assert "Store for user" not in body  # a read-only session steers the view only
    chart = re.search(r'<script type="application/json" id="timeline-data">(.*?)</script>',
                      page.text, re.S)
    assert chart and '"traces"' in chart.group(1) and '"stackgroup"' in chart.group(1)
    doc = api(server).get("/v1/users/u0003/profile").json()  # stray interests are marked
    assert page.text.count('class="stray"') == sum(i["stray"] for i in doc["interests"])
    events = api(server)
    r = events.post("/v1/events", json={"events": [
        {"user": "u0003", "item": "i00042", "timestamp": time.time()}]})
    assert r.status_code == 200
    assert c.get("/ui/users/u0003/version").json()["logged_events"] == 1
    frag = text(c.get("/ui/users/u0003/fragment", params={"diversity": "0.5"}).text)
    assert "1 logged since" in frag and "Fernhill Frost-hardy Compost Bin 8" in frag
    assert "(diversity 0.50)" in frag
    bad = c.get("/ui/users/u0003/fragment", params={"diversity": "2"})
    assert bad.status_code == 422 and "diversity" in bad.json()["error"]
    missing = c.get("/ui/users/nobody-here")
    assert missing.status_code == 404 and "unknown user" in missing.text


def test_mute_steers_the_view_and_only_an_admin_session_stores_it(server):
    c, _ = login(server.url, DASHBOARD)
    user = next(u for u in ("u0001", "u0002", "u0004", "u0005", "u0006", "u0007")
                if len(re.findall(r'data-steer="mute"', c.get(f"/ui/users/{u}").text)) >= 2)
    frag = c.get(f"/ui/users/{user}/fragment").text
    first = int(re.search(r'<tr data-interest="(\d+)"', frag).group(1))
    muted = c.get(f"/ui/users/{user}/fragment", params={"mute": str(first)}).text
    assert f"muted {first}" in text(muted)
    assert re.search(rf'data-steer="mute" data-interest="{first}" aria-pressed="true"', muted)
    assert c.get(f"/ui/users/{user}/fragment", params={"mute": "x"}).status_code == 422
    token = re.search(r'data-csrf="([^"]+)"', c.get(f"/ui/users/{user}").text).group(1)
    form = {"csrf": token, "interest": str(first), "steer": "mute"}
    refused = c.post(f"/ui/users/{user}/preferences", data=form)
    assert refused.status_code == 403 and "admin key" in refused.json()["error"]
    admin, _ = login(server.url, ADMIN)
    page = admin.get(f"/ui/users/{user}").text
    assert "Store for user" in page
    token = re.search(r'data-csrf="([^"]+)"', page).group(1)
    assert admin.post(f"/ui/users/{user}/preferences",
                      data={**form, "csrf": "forged"}).status_code == 403
    stored = admin.post(f"/ui/users/{user}/preferences", data={**form, "csrf": token})
    assert stored.status_code == 200, stored.text
    prefs = api(server).get(f"/v1/users/{user}/interests").json()["preferences"]
    assert [(p["interest"], p["mute"]) for p in prefs] == [(first, True)]
    assert "stored: mute" in text(admin.get(f"/ui/users/{user}/fragment").text)
    cleared = admin.post(f"/ui/users/{user}/preferences",
                         data={**form, "csrf": token, "steer": "clear"})
    assert cleared.status_code == 200
    assert api(server).get(f"/v1/users/{user}/interests").json()["preferences"] == []


def test_a_user_known_only_from_the_log_gets_a_page(server):
    c, _ = login(server.url, DASHBOARD)
    events = api(server)
    events.post("/v1/events", json={"events": [
        {"user": "newcomer", "item": f"i0000{j}", "timestamp": 1_700_000_000.0 + j}
        for j in range(4)]})
    body = text(c.get("/ui/users/newcomer").text)
    assert "4 events the model reads (0 from the checkpoint's history, 4 logged since)" in body
    found = c.get("/ui/users", params={"q": "newcom"})
    assert "/ui/users/newcomer" in found.text


def test_a_user_whose_items_the_model_does_not_know_is_told_so(server):
    c, _ = login(server.url, DASHBOARD)
    api(server).post("/v1/events", json={"events": [
        {"user": "stranger", "item": "not-in-the-catalogue", "timestamp": 1_700_000_000.0}]})
    body = text(c.get("/ui/users/stranger").text)
    assert "none of this user's events is of an item the model knows" in body
    assert "not-in-the-catalogue (unknown to the model)" in body


def test_items_search_similar_and_live_feed(server):
    c, _ = login(server.url, DASHBOARD)
    item = text(c.get("/ui/items/i00042").text)
    assert "Fernhill Frost-hardy Compost Bin 8" in item and "Similar items" in item
    found = text(c.get("/ui/items", params={"q": "compost bin"}).text)
    assert "Nearest to “compost bin”" in found and "Compost Bin" in found
    api(server).post("/v1/events", json={"events": [
        {"user": "feed-user", "item": "i00001", "timestamp": time.time()}]})
    feed = c.get("/ui/feed", params={"after": 0}).json()
    assert feed["available"] and feed["events"][-1]["user"] == "feed-user"
    later = c.get("/ui/feed", params={"after": feed["last"]}).json()
    assert later["events"] == []


def test_the_overview_reports_the_services_own_figures(server):
    c, _ = login(server.url, DASHBOARD)
    events = api(server)
    for _ in range(3):
        events.get("/v1/users/u0001/recommendations")
    body = text(c.get("/ui/fragments/overview").text)
    assert "gru · interest head decay" in body and "hashing-64-bigrams" in body
    latency = body.split("Latency by route")[1]
    assert re.search(r"GET /v1/users/\{user\}/recommendations [3-9] ", latency)  # 3 + others'
    assert "/ui" not in latency  # the dashboard's own requests are left out


def test_keys_never_reach_urls_or_the_access_log(server):
    for key in (DASHBOARD, ADMIN, "wrong-key-000"):
        c, r = login(server.url, key, "/ui/users/u0003")
        assert all(key not in unquote(h) for h in r.headers.get_list("location"))
    log = server.log.read_text()
    assert "POST /ui/login" in log  # the access log is on
    assert not [k for k in KEYS + ("wrong-key-000",) if k in log]


def test_api_docs_load_their_assets_from_the_service(server):
    assert client(server.url).get("/docs").status_code == 401  # the docs take the admin key
    c = client(server.url, headers={"X-API-Key": ADMIN})
    for path in ("/docs", "/redoc"):
        html = c.get(path).text
        sources = re.findall(r'(?:src|href)="([^"]+)"', html)
        assert sources and all(s.startswith("/") for s in sources), sources
        for s in sources:
            assert c.get(s).status_code == 200, s
    assert c.get("/openapi.json").json()["info"]["title"] == "prismrec"


def test_the_dashboard_is_off_without_a_dashboard_or_admin_key(checkpoint, tmp_path):
    s = UiServer(checkpoint, tmp_path / "s.log", f"sqlite:///{tmp_path / 'x.db'}",
                 env={"PRISMREC_API_KEY": CLIENT}).wait_ready()
    try:
        r = httpx.get(s.url + "/ui")
        assert r.status_code == 403 and "PRISMREC_DASHBOARD_KEY" in r.text
    finally:
        s.stop()


def test_prismrec_ui_serves_a_checkpoint_read_only(checkpoint, tmp_path):
    s = UiServer(checkpoint, tmp_path / "ui.log", command="ui").wait_ready()
    try:
        c, r = login(s.url, DASHBOARD)
        assert r.status_code == 303
        body = text(c.get("/ui").text)
        assert "checkpoint only" in body and "No store" in body
        user = text(c.get("/ui/users/u0003").text)
        assert "from the checkpoint's history, 0 logged since" in user
        assert "Current interests" in user
        assert "No live feed" in text(c.get("/ui/live").text)
        assert httpx.get(s.url + "/v1/events").status_code == 404  # no API here
    finally:
        s.stop()


def test_prismrec_ui_refuses_to_start_without_a_key(checkpoint, tmp_path):
    s = UiServer(checkpoint, tmp_path / "nokey.log", command="ui", env={})
    s.proc.wait(timeout=60)
    s.stop()
    assert s.proc.returncode != 0
    assert "needs a key" in (tmp_path / "nokey.log").read_text()


def test_a_model_without_interest_head_or_text_still_gets_its_pages(tiny_checkpoint, tmp_path):
    s = UiServer(tiny_checkpoint, tmp_path / "tiny.log", command="ui").wait_ready()
    try:
        c, _ = login(s.url, DASHBOARD)
        assert "no interest head" in text(c.get("/ui").text)
        user = text(c.get("/ui/users/u0003").text)
        assert "interests from the kmeans components" in user and "Current interests" in user
        found = text(c.get("/ui/items", params={"q": "anything"}).text)
        assert "this model has no text part" in found
        assert "Similar items" in text(c.get("/ui/items/i00001").text)
    finally:
        s.stop()
