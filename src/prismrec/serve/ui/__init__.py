"""The web dashboard at ``/ui``: overview, users and their moving interests, items, live feed.

``prismrec serve`` mounts it on the service (same process, store and keys: the admin key or
the read-only dashboard key opens it); ``create_ui_app`` serves it over a checkpoint alone
(``prismrec ui``: read-only, training histories, no store).
"""

from __future__ import annotations

from pathlib import Path

from prismrec.errors import require

require("jinja2", "serve")  # plotly is found (not imported) by routes.plotly_js

from fastapi import FastAPI  # noqa: E402

from prismrec.serve.limits import RateLimiter  # noqa: E402
from prismrec.serve.settings import ServeSettings  # noqa: E402
from prismrec.serve.ui.data import Dashboard  # noqa: E402
from prismrec.serve.ui.feed import EventFeed  # noqa: E402
from prismrec.serve.ui.routes import build_ui_router  # noqa: E402
from prismrec.serve.ui.session import UiKeys  # noqa: E402

__all__ = ["Dashboard", "EventFeed", "UiKeys", "build_ui_router", "create_ui_app"]


def create_ui_app(recommender, key: str, *, checkpoint_dir: str | Path | None = None,
                  login_rate: float = ServeSettings.login_rate,
                  login_burst: int = ServeSettings.login_burst) -> FastAPI:
    """The dashboard alone over a fitted recommender, opened by ``key`` (read-only).

    Login attempts take a token from their client address's bucket (``login_rate`` per
    second, bursts of ``login_burst``; rate 0: unlimited); none left: 429 + Retry-After.
    """
    if not isinstance(key, str) or len(key) < 8 or not key.isascii() or not key.isprintable():
        raise ValueError("the dashboard key must be printable ASCII of at least 8 characters")
    ServeSettings(login_rate=login_rate, login_burst=login_burst).validate()
    limit = RateLimiter(login_rate, login_burst) if login_rate > 0 else None
    app = FastAPI(title="prismrec dashboard", docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.include_router(build_ui_router(Dashboard(recommender, checkpoint_dir=checkpoint_dir),
                                       UiKeys(admin=None, dashboard=key), login_limit=limit))
    return app
