"""The dashboard in a real browser: Debian's Chromium driven by Playwright (no browser
download), against ``prismrec serve`` on 127.0.0.1 with a small model.

Every page loads with no console error and no failed request; the user page shows the
interests and a timeline plotted from data, whose hover names the event's item; an event
posted through the API appears on the open user page without a reload; the diversity slider
re-queries the list; the live page shows new events; a wrong or missing key is refused; the
pages fit a phone and can be used from the keyboard. Screenshots go to the test's temporary
folder (and to ``$PRISMREC_SCREENSHOTS`` when set: that is how docs/ gets its pictures).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from ui_server import ADMIN, CLIENT, DASHBOARD, UiServer, build_checkpoint

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium); the browser tests "
                "need it", allow_module_level=True)

from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ui-browser")
    ckpt = build_checkpoint(folder / "gru")
    s = UiServer(ckpt, folder / "serve.log", f"sqlite:///{folder / 'ui.db'}").wait_ready()
    yield s
    s.stop()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Watch:
    """Console errors, failed requests and HTTP errors seen by one page."""

    def __init__(self, page: Page, allow: tuple[str, ...] = ()) -> None:
        self.problems: list[str] = []
        self.allow = allow
        page.on("console", lambda m: m.type == "error" and self._add(f"console: {m.text}"))
        page.on("pageerror", lambda e: self._add(f"page error: {e}"))
        page.on("requestfailed", lambda r: self._add(f"failed: {r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and self._add(f"{r.status}: {r.url}"))

    def _add(self, text: str) -> None:
        if not any(a in text for a in self.allow):
            self.problems.append(text)


def post(server, user: str, item: str) -> None:
    with server.api() as api:
        r = api.post("/v1/events", json={"events": [
            {"user": user, "item": item, "timestamp": time.time()}]})
    assert r.status_code == 200, r.text


def shot(page: Page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    target = os.environ.get("PRISMREC_SCREENSHOTS")
    if target:
        shutil.copy(path, Path(target) / path.name)


def logged_in(browser, server, viewport=(1280, 800), start="/ui"):
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    watch = Watch(page)
    page.goto(server.url + start)
    assert "/ui/login" in page.url
    page.fill("#key", DASHBOARD)
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + start)
    return context, page, watch


def test_every_page_loads_cleanly(browser, server, tmp_path):
    context, page, watch = logged_in(browser, server)
    # the overview refreshes itself: new events and requests show without a reload
    with server.api() as api:
        for j in range(5):
            r = api.post("/v1/events", json={"events": [
                {"user": "u0001", "item": f"i0000{j}", "timestamp": time.time()}]})
            assert r.status_code == 200
            assert api.get("/v1/users/u0001/recommendations").status_code == 200
    expect(page.locator("#events-total")).to_have_text("5", timeout=15_000)
    expect(page.locator("#overview")).to_contain_text("events/s", timeout=15_000)
    expect(page.locator("#overview")).to_contain_text("POST /v1/events")
    shot(page, tmp_path, "overview")
    for path, marker in (("/ui", "Model"), ("/ui/users?q=u001", "u0015"),
                         ("/ui/users/u0015", "Current interests"),
                         ("/ui/items?q=compost+bin", "Nearest to"),
                         ("/ui/items/i00042", "Similar items"), ("/ui/live", "Live events")):
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
        assert marker in page.inner_text("main"), path
        shot(page, tmp_path, re.sub(r"\W+", "_", path.strip("/")))
    context.set_extra_http_headers({"X-API-Key": ADMIN})  # the docs take the admin key
    for path, ready in (("/docs", ".swagger-ui .info"), ("/redoc", "h1")):
        page.goto(server.url + path)
        page.wait_for_selector(ready, timeout=20_000)
        assert "prismrec" in page.inner_text("body"), path
    assert watch.problems == []
    context.close()


def test_the_user_page_plots_interests_and_updates_live(browser, server, tmp_path):
    context, page, watch = logged_in(browser, server, start="/ui/users/u0015")
    page.wait_for_selector("#timeline .main-svg")
    shot(page, tmp_path, "user")
    rows = page.locator("#interests tbody tr")
    traces = page.locator("#timeline .scatterlayer .trace")
    assert rows.count() == 3 and traces.count() == rows.count()  # u0015 has three interests
    assert page.locator("#timeline .scatterlayer path.js-fill").count() == rows.count()
    # hovering the middle of the plot names an event: its index, time and item title
    area = page.locator("#timeline .nsewdrag").first.bounding_box()
    page.mouse.move(area["x"] + area["width"] / 2, area["y"] + area["height"] / 2)
    expect(page.locator("#timeline .hoverlayer")).to_contain_text(re.compile(r"event \d+ · "))
    hover = page.locator("#timeline .hoverlayer").text_content()
    assert re.search(r"event \d+ · 20\d\d-\d\d-\d\d", hover) and "(i000" in hover
    # the x axis switches to time
    page.click("button[data-axis=time]")
    expect(page.locator("#timeline .xtick text").first).to_have_text(re.compile(r"20\d\d|:"))
    assert page.get_attribute("button[data-axis=time]", "aria-pressed") == "true"
    # an event posted through the API appears without a reload
    page.evaluate("window.__same_page = true")  # evaluate() runs despite the page's CSP
    post(server, "u0015", "i00042")
    expect(page.locator("#user-summary")).to_contain_text("1 logged since", timeout=15_000)
    assert "Fernhill Frost-hardy Compost Bin 8" in page.inner_text("#recent li:first-child")
    assert page.evaluate("window.__same_page") is True
    page.wait_for_selector("#timeline .main-svg")  # redrawn with the new event
    # the diversity slider re-queries the list (keyboard: End sets it to 1)
    page.focus("#diversity")
    page.keyboard.press("End")
    expect(page.locator("#rec-h")).to_contain_text("1.00", timeout=15_000)
    shown = page.eval_on_selector_all("#recommendations li small.id",
                                      "els => els.map(e => e.textContent)")
    expected = re.findall(r'<small class="id">([^<]+)</small>', page.request.get(
        server.url + "/ui/users/u0015/fragment?diversity=1").text().split('id="recent"')[0])
    assert len(shown) == 10 and shown == expected
    assert watch.problems == []
    shot(page, tmp_path, "user_after_event")
    context.close()


def test_muting_an_interest_changes_the_list(browser, server, tmp_path):
    context, page, watch = logged_in(browser, server, start="/ui/users/u0015")
    expect(page.locator("#diversity")).to_have_value("0.25")  # the library's default
    items = "#recommendations li small.id"
    before = page.eval_on_selector_all(items, "els => els.map(e => e.textContent)")
    served = page.eval_on_selector_all("#recommendations li",
                                       "els => els.map(e => e.dataset.interest)")
    top = served[0]  # the interest serving the first item
    page.click(f"button.steer[data-steer=mute][data-interest='{top}']")
    expect(page.locator("#rec-h")).to_contain_text(f"muted {top}", timeout=15_000)
    after = page.eval_on_selector_all(items, "els => els.map(e => e.textContent)")
    now = page.eval_on_selector_all("#recommendations li",
                                    "els => els.map(e => e.dataset.interest)")
    assert after != before and top not in now and len(after) == 10
    pressed = page.locator(f"button.steer[data-steer=mute][data-interest='{top}']")
    assert pressed.get_attribute("aria-pressed") == "true"
    shot(page, tmp_path, "user_muted")
    pressed.click()  # unmuting gives the first list back
    expect(page.locator("#rec-h")).not_to_contain_text("muted", timeout=15_000)
    assert page.eval_on_selector_all(items, "els => els.map(e => e.textContent)") == before
    assert watch.problems == []
    context.close()


def test_the_live_page_shows_new_events(browser, server, tmp_path):
    context, page, watch = logged_in(browser, server, start="/ui/live")
    post(server, "live-viewer", "i00007")
    page.wait_for_selector("#feed tbody tr >> text=live-viewer", timeout=15_000)
    assert watch.problems == []
    shot(page, tmp_path, "live")
    context.close()


def test_a_wrong_or_missing_key_is_refused(browser, server, tmp_path):
    context = browser.new_context()
    page = context.new_page()
    watch = Watch(page, allow=("403",))
    page.goto(server.url + "/ui/users/u0015")
    assert "/ui/login" in page.url and page.locator("#timeline").count() == 0
    for key in ("wrong-key-000", CLIENT):
        page.fill("#key", key)
        page.keyboard.press("Enter")
        page.wait_for_selector(".error")
        assert "does not open the dashboard" in page.inner_text(".error")
    assert "/ui/login" in page.url
    assert context.cookies() and all(c["name"] != "prismrec_ui" for c in context.cookies())
    assert watch.problems == []
    shot(page, tmp_path, "refused")
    context.close()


def test_a_phone_sized_screen_needs_no_sideways_scrolling(browser, server, tmp_path):
    context, page, watch = logged_in(browser, server, viewport=(390, 844),
                                     start="/ui/users/u0015")
    page.wait_for_selector("#timeline .main-svg")
    for path in ("/ui/users/u0015", "/ui", "/ui/users?q=u001", "/ui/items/i00042",
                 "/ui/items?q=compost+bin", "/ui/live"):
        page.goto(server.url + path)
        page.wait_for_load_state("networkidle")
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)
        shot(page, tmp_path, "phone_" + re.sub(r"\W+", "_", path.strip("/")))
    assert watch.problems == []
    context.close()


def test_the_dashboard_is_keyboard_navigable(browser, server):
    context, page, _ = logged_in(browser, server)
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    names = []
    for _ in range(4):
        page.keyboard.press("Tab")
        names.append(page.evaluate("document.activeElement.textContent"))
    assert names == ["Overview", "Users", "Items", "Live"]
    page.keyboard.press("Enter")  # opens Live
    page.wait_for_url(server.url + "/ui/live")
    page.goto(server.url + "/ui/users")
    page.wait_for_selector("#q:focus")  # the search box has the focus
    page.keyboard.type("u0015")
    page.keyboard.press("Enter")
    page.wait_for_url(server.url + "/ui/users/u0015")
    context.close()


def test_catalogue_text_is_shown_as_text_not_markup(browser, server):
    hostile = '<img src=x onerror="window.__owned=1"> %{y} <b>Evil</b> Compost'
    with server.api() as api:
        r = api.post("/v1/items", headers={"X-API-Key": ADMIN}, json={"items": [
            {"id": "evil-1", "title": hostile, "categories": ["gardening"]}]})
        assert r.status_code == 200, r.text
    post(server, "hostile-user", "i00042")
    post(server, "hostile-user", "evil-1")
    context, page, watch = logged_in(browser, server, start="/ui/users/hostile-user")
    page.wait_for_selector("#timeline .main-svg")
    assert hostile in page.inner_text("#recent")
    area = page.locator("#timeline .nsewdrag").first.bounding_box()
    page.mouse.move(area["x"] + area["width"] - 2, area["y"] + area["height"] / 2)
    expect(page.locator("#timeline .hoverlayer")).to_contain_text("Evil")
    hover = page.locator("#timeline .hoverlayer").text_content()
    assert "%{y}" in hover and "<b>Evil</b>" in hover  # literal, not a template or markup
    page.goto(server.url + "/ui/items/evil-1")
    assert hostile in page.inner_text("h1")
    assert page.evaluate("window.__owned") is None
    assert watch.problems == []  # the <img src=x> was never requested
    context.close()
