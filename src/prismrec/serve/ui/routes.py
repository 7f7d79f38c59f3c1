"""The dashboard's routes under ``/ui``: server-rendered pages, a few JSON/HTML fragments
the pages poll, and the static files (our CSS and JS, plotly.js from the plotly wheel).

Every page and fragment needs a session cookie (``prismrec.serve.ui.session``); without one
a page redirects to the login form and a fragment answers 401. Nothing here changes the
model. The state-changing requests (login, logout, storing an interest preference) carry a
CSRF token. Mute and boost on the user page steer that view only (any session: the
read-only dashboard key too); storing them as the user's preference -- what the API's
``PUT /v1/users/{id}/interests/{interest}`` does -- takes an admin session.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from prismrec.errors import DataError, UnknownIdError
from prismrec.recommender.core import DEFAULT_DIVERSITY
from prismrec.serve.limits import RateLimiter
from prismrec.serve.ui.data import Dashboard
from prismrec.serve.ui.session import (
    COOKIE,
    LOGIN_COOKIE,
    PATH,
    Session,
    UiKeys,
    csrf_ok,
    new_login_token,
)

HERE = Path(__file__).parent
STATIC = {"ui.css": "text/css", "ui.js": "text/javascript"}
MAX_K = 50
DIVERSITY = str(DEFAULT_DIVERSITY)  # the slider starts where the library's composition does
MAX_QUERY = 500  # characters in a search box
FAILED_LOGIN_DELAY = 0.5  # seconds before a wrong key is answered
# No inline script and nothing from elsewhere; plotly.js adds <style> elements at run time.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'")


def plotly_js() -> Path:
    """plotly.min.js as shipped inside the plotly wheel (found without importing plotly)."""
    from importlib.util import find_spec

    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("plotly is needed for the dashboard's charts; install it with: "
                           "pip install 'prismrec[serve]'")
    path = Path(spec.submodule_search_locations[0]) / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise RuntimeError(f"plotly.js is missing from the plotly package at {path}; "
                           "reinstall plotly (pip install 'prismrec[serve]')")
    return path


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(["html"]))
    env.filters["pct"] = lambda x: "" if x is None else f"{100 * x:.0f}%"
    env.filters["num"] = lambda x, d=2: "–" if x is None else f"{x:,.{d}f}"
    env.filters["q"] = lambda s: quote(str(s), safe="")
    return env


def build_ui_router(dash: Dashboard, keys: UiKeys, *, secure_default: bool = False,
                    login_limit: RateLimiter | None = None) -> APIRouter:
    """The ``/ui`` routes over ``dash``, opened by ``keys``.

    ``login_limit``: a token bucket per client address for ``POST /ui/login`` (every
    attempt takes a token, before the form is read; none left: 429 with ``Retry-After``);
    None: login attempts are not limited (only slowed, ``FAILED_LOGIN_DELAY``). The address
    is the TCP peer's: behind a proxy every client shares the proxy's bucket.
    """
    env = _environment()
    router = APIRouter(include_in_schema=False)
    plotly_path = plotly_js()

    def page(request: Request, name: str, status: int = 200, session: Session | None = None,
             **context: Any) -> HTMLResponse:
        html = env.get_template(name).render(
            session=session, read_only=dash.read_only, request_path=request.url.path,
            **context)
        return HTMLResponse(html, status_code=status, headers=_headers())

    def session_of(request: Request) -> Session | None:
        return keys.check(request.cookies.get(COOKIE))

    def need_page(request: Request) -> Session | Response:
        if not keys.enabled:
            return page(request, "disabled.html", 403)
        s = session_of(request)
        if s is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"{PATH}/login?next={quote(target, safe='')}", 303)
        return s

    def need_fragment(request: Request) -> Session:
        if not keys.enabled:
            raise HTTPException(403, "the dashboard is disabled: start the service with a "
                                     "dashboard or admin key")
        s = session_of(request)
        if s is None:
            raise HTTPException(401, "log in to the dashboard first (/ui/login)")
        return s

    def secure(request: Request) -> bool:
        return secure_default or request.url.scheme == "https"

    # -- login ------------------------------------------------------------------------------
    @router.get(f"{PATH}/login")
    def login_form(request: Request, next: str = PATH) -> Response:
        if not keys.enabled:
            return page(request, "disabled.html", 403)
        token = new_login_token()
        resp = page(request, "login.html", csrf=token, next=_safe_next(next), error=None)
        resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path=PATH,
                        secure=secure(request), max_age=3600)
        return resp

    @router.post(f"{PATH}/login")
    async def login(request: Request) -> Response:
        if not keys.enabled:
            return page(request, "disabled.html", 403)
        wait = login_limit.retry_after(_address(request)) if login_limit is not None else 0
        if wait:  # before the form is read or the key compared
            token = new_login_token()
            resp = page(request, "login.html", 429, csrf=token, next=PATH,
                        error=f"too many login attempts from your address; try again in "
                        f"{wait} s")
            resp.headers["Retry-After"] = str(wait)
            resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path=PATH,
                            secure=secure(request), max_age=3600)
            return resp
        form = await _form(request)
        target = _safe_next(form.get("next", PATH))
        if not csrf_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
            token = new_login_token()
            resp = page(request, "login.html", 403, csrf=token, next=target,
                        error="the form expired or did not come from this page: try again")
            resp.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict", path=PATH,
                            secure=secure(request), max_age=3600)
            return resp
        role = keys.role_of(form.get("key", ""))
        if role is None:
            await asyncio.sleep(FAILED_LOGIN_DELAY)  # slows guessing; other requests go on
            return page(request, "login.html", 403, csrf=request.cookies.get(LOGIN_COOKIE),
                        next=target, error="that key does not open the dashboard "
                        "(use the admin key or the dashboard key)")
        value, _ = keys.issue(role)
        resp = RedirectResponse(target, 303)
        resp.set_cookie(COOKIE, value, httponly=True, samesite="strict", path=PATH,
                        secure=secure(request), max_age=12 * 3600)
        resp.delete_cookie(LOGIN_COOKIE, path=PATH)
        return resp

    @router.post(f"{PATH}/logout")
    async def logout(request: Request) -> Response:
        s = need_fragment(request)
        form = await _form(request)
        if not csrf_ok(s.csrf, form.get("csrf")):
            raise HTTPException(403, "missing or wrong CSRF token")
        resp = RedirectResponse(f"{PATH}/login", 303)
        resp.delete_cookie(COOKIE, path=PATH)
        return resp

    # -- pages ------------------------------------------------------------------------------
    @router.get(PATH)
    def overview(request: Request) -> Response:
        s = need_page(request)
        if isinstance(s, Response):
            return s
        return page(request, "overview.html", session=s, o=dash.overview())

    @router.get(f"{PATH}/fragments/overview")
    def overview_fragment(request: Request) -> Response:
        need_fragment(request)
        return page(request, "_overview.html", o=dash.overview())

    @router.get(f"{PATH}/users")
    def users(request: Request, q: str = "") -> Response:
        s = need_page(request)
        if isinstance(s, Response):
            return s
        q = q[:MAX_QUERY]
        found = dash.find_users(q) if q.strip() else []
        if len(found) == 1 and found[0] == q.strip():
            return RedirectResponse(f"{PATH}/users/{quote(found[0], safe='')}", 303)
        return page(request, "users.html", session=s, q=q, found=found,
                    sample=dash.recommender.users_.to_list()[:10])

    @router.get(f"{PATH}/users/{{user:path}}/fragment")
    def user_fragment(request: Request, user: str, diversity: str = DIVERSITY, k: str = "10",
                      mute: str = "", boost: str = "") -> Response:
        s = need_fragment(request)
        d, n = _diversity(diversity), _k(k)
        try:
            view = dash.user(user, k=n, diversity=d, mute=_ids(mute, "mute"),
                             boost=_ids(boost, "boost"))
        except UnknownIdError as exc:
            raise HTTPException(404, str(exc)) from None
        return page(request, "_user.html", u=view, session=s)

    @router.post(f"{PATH}/users/{{user:path}}/preferences")
    async def store_preference(request: Request, user: str) -> JSONResponse:
        """Store one interest preference of the user (admin session, CSRF token)."""
        s = need_fragment(request)
        form = await _form(request)
        if not csrf_ok(s.csrf, form.get("csrf")):
            raise HTTPException(403, "missing or wrong CSRF token")
        if s.role != "admin":
            raise HTTPException(403, "the read-only dashboard key steers the view only; "
                                     "storing a user's preference takes the admin key")
        given = _ids(form.get("interest", ""), "interest")
        steer = form.get("steer", "")
        if len(given) != 1 or steer not in ("mute", "boost", "clear"):
            raise HTTPException(422, "send interest (one id) and steer (mute, boost or clear)")
        interest = given[0]
        try:
            dash.set_preference(user, interest, None if steer == "clear" else steer)
        except ValueError as exc:
            raise HTTPException(409, str(exc)) from None
        return JSONResponse({"user": user, "interest": interest, "steer": steer},
                            headers=_headers())

    @router.get(f"{PATH}/users/{{user:path}}/version")
    def user_version(request: Request, user: str) -> JSONResponse:
        need_fragment(request)
        return JSONResponse({"user": user, "logged_events": dash.user_log_size(user)},
                            headers=_headers())

    @router.get(f"{PATH}/users/{{user:path}}")
    def user_page(request: Request, user: str, diversity: str = DIVERSITY, k: str = "10",
                  mute: str = "", boost: str = "") -> Response:
        s = need_page(request)
        if isinstance(s, Response):
            return s
        try:
            d, n = _diversity(diversity), _k(k)
            view = dash.user(user, k=n, diversity=d, mute=_ids(mute, "mute"),
                             boost=_ids(boost, "boost"))
        except HTTPException as exc:
            return page(request, "error.html", exc.status_code, session=s, message=exc.detail)
        except UnknownIdError as exc:
            return page(request, "error.html", 404, session=s, message=str(exc))
        return page(request, "user.html", session=s, u=view,
                    default_diversity=DEFAULT_DIVERSITY)

    @router.get(f"{PATH}/items")
    def items(request: Request, q: str = "", id: str = "") -> Response:
        s = need_page(request)
        if isinstance(s, Response):
            return s
        if id.strip():
            return RedirectResponse(f"{PATH}/items/{quote(id.strip(), safe='')}", 303)
        q = q[:MAX_QUERY]
        found, error = [], None
        if q.strip():
            if not dash.can_search():
                error = ("this model has no text part, so items cannot be searched by their "
                         "text; open an item by its id instead")
            else:
                try:
                    found = dash.search(q, 20)
                except (DataError, ValueError, RuntimeError) as exc:
                    error = f"search failed: {exc}"
        return page(request, "items.html", session=s, q=q, found=found, error=error,
                    encoder=(getattr(dash.recommender, "text_encoder_", None) or {}).get("name"),
                    sample=dash.recommender.items_.to_list()[:10])

    @router.get(f"{PATH}/items/{{item:path}}")
    def item_page(request: Request, item: str) -> Response:
        s = need_page(request)
        if isinstance(s, Response):
            return s
        try:
            view = dash.item(item)
        except UnknownIdError as exc:
            return page(request, "error.html", 404, session=s, message=str(exc))
        return page(request, "item.html", session=s, it=view)

    @router.get(f"{PATH}/live")
    def live(request: Request) -> Response:
        s = need_page(request)
        if isinstance(s, Response):
            return s
        return page(request, "live.html", session=s, feed=dash.feed_after(0))

    @router.get(f"{PATH}/feed")
    def feed(request: Request, after: str = "0") -> JSONResponse:
        need_fragment(request)
        try:
            seq = max(0, int(after))
        except ValueError:
            raise HTTPException(422, f"after must be a whole number, got {after[:40]!r}") \
                from None
        return JSONResponse(dash.feed_after(seq), headers=_headers())

    # -- static -----------------------------------------------------------------------------
    @router.get(f"{PATH}/static/plotly.min.js")
    def plotly_file() -> FileResponse:
        return FileResponse(plotly_path, media_type="text/javascript",
                            headers={"Cache-Control": "max-age=86400"})

    @router.get(f"{PATH}/static/{{name}}")
    def static(name: str) -> FileResponse:
        if name not in STATIC:
            raise HTTPException(404, f"no static file {name!r}")
        return FileResponse(HERE / "static" / name, media_type=STATIC[name],
                            headers={"Cache-Control": "no-cache"})

    return router


def _headers() -> dict[str, str]:
    return {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin", "Cache-Control": "no-store"}


def _address(request: Request) -> str:
    """The client's address (the TCP peer), the key of its login bucket."""
    return request.client.host if request.client is not None else ""


def _safe_next(target: str) -> str:
    """Only paths of the dashboard itself (no open redirect to another site)."""
    if not target.startswith(PATH) or target.startswith("//") or "\\" in target:
        return PATH
    return target


async def _form(request: Request) -> dict[str, str]:
    """A urlencoded form body (the login and logout forms), first value of each field."""
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        raise HTTPException(415, "send the form as application/x-www-form-urlencoded")
    body = (await request.body()).decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _diversity(text: str) -> float:
    try:
        d = float(text)
    except ValueError:
        d = math.nan
    if not 0.0 <= d <= 1.0:
        raise HTTPException(422, f"diversity must be a number in [0, 1], got {text[:40]!r}")
    return d


def _ids(text: str, what: str) -> tuple[int, ...]:
    """Interest ids separated by commas ("" for none)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    if len(parts) > 100 or not all(p.isdigit() and len(p) < 7 for p in parts):
        raise HTTPException(422, f"{what} takes interest ids separated by commas, got "
                                 f"{text[:40]!r}")
    return tuple(int(p) for p in parts)


def _k(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_K:
        raise HTTPException(422, f"k must be a whole number from 1 to {MAX_K}, got "
                                 f"{text[:40]!r}")
    return int(text)
