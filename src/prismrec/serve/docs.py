"""``/docs`` (Swagger UI) and ``/redoc`` served without a CDN.

FastAPI's own pages load their JavaScript and CSS from a CDN, so they are blank on a
machine without internet. Here the same pages load them from the service, which serves the
copies shipped inside the ``fastapi-offline`` wheel (Swagger UI, ReDoc, favicon; MIT and
Apache-2.0 licensed, see that package). Nothing is fetched at run time: ReDoc's sidebar
logo, which its bundle loads from a CDN, is pointed at the local favicon when the file is
served, and Swagger UI's online spec validator (a badge loaded from swagger.io) is off.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import FileResponse, HTMLResponse, Response

from prismrec.errors import require

ASSETS = "/docs-assets"
REDOC_LOGO = b"https://cdn.redoc.ly/redoc/logo-mini.svg"
FILES = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
         "redoc.standalone.js": "text/javascript", "favicon.png": "image/png"}


def assets_folder() -> Path:
    """The folder of Swagger UI and ReDoc files inside the installed ``fastapi_offline``."""
    module = require("fastapi_offline", "serve")
    folder = Path(module.__file__).parent / "static"
    missing = [n for n in FILES if not (folder / n).is_file()]
    if missing:
        raise RuntimeError(f"fastapi-offline at {folder} lacks {', '.join(missing)}; "
                           "reinstall it (pip install 'prismrec[serve]')")
    return folder


def offline_docs(app: FastAPI, *, docs_url: str = "/docs", redoc_url: str = "/redoc") -> None:
    """Add the docs pages and their assets to ``app`` (made with docs_url=redoc_url=None)."""
    folder = assets_folder()
    title = f"{app.title} API"
    openapi_url = app.openapi_url or "/openapi.json"
    oauth = f"{docs_url}/oauth2-redirect"
    redoc_js = (folder / "redoc.standalone.js").read_bytes().replace(
        REDOC_LOGO, f"{ASSETS}/favicon.png".encode())

    @app.get(docs_url, include_in_schema=False)
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url, title=title, oauth2_redirect_url=oauth,
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None})

    @app.get(oauth, include_in_schema=False)
    def swagger_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(redoc_url, include_in_schema=False)
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url=openapi_url, title=title,
                              redoc_js_url=f"{ASSETS}/redoc.standalone.js",
                              redoc_favicon_url=f"{ASSETS}/favicon.png",
                              with_google_fonts=False)

    @app.get(ASSETS + "/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        if name == "redoc.standalone.js":
            return Response(redoc_js, media_type=FILES[name],
                            headers={"Cache-Control": "max-age=86400"})
        if name not in FILES:
            raise HTTPException(404, f"no docs asset {name!r}")
        return FileResponse(folder / name, media_type=FILES[name],
                            headers={"Cache-Control": "max-age=86400"})
