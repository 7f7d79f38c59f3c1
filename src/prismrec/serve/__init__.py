"""prismrec.serve: the HTTP service (FastAPI) over live profiles; the ``serve`` extra.

``create_app(live, settings)`` builds the app; nothing is built at import time. Names load
lazily so that ``import prismrec.serve`` works without FastAPI until an app is made.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

_EXPORTS = {
    "ServeSettings": "prismrec.serve.settings",
    "create_app": "prismrec.serve.app",
    "Metrics": "prismrec.serve.metrics",
}

__all__ = ["Metrics", "ServeSettings", "create_app"]

if TYPE_CHECKING:  # pragma: no cover
    from prismrec.serve.app import create_app
    from prismrec.serve.metrics import Metrics
    from prismrec.serve.settings import ServeSettings


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'prismrec.serve' has no attribute {name!r}")
