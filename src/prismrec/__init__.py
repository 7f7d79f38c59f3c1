"""prismrec: recommendation that follows each user's dynamic interests.

The public surface is listed in ``__all__``; heavy parts (torch) load on first use so that
``import prismrec`` and ``prismrec --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

_EXPORTS = {
    "Recommender": "prismrec.recommender",
    "Catalog": "prismrec.data",
    "Dataset": "prismrec.data",
    "Interactions": "prismrec.data",
    "load_dataset": "prismrec.data",
    "evaluate": "prismrec.eval",
}

__all__ = [
    "Catalog",
    "Dataset",
    "Interactions",
    "Recommender",
    "__version__",
    "evaluate",
    "load_dataset",
]

if TYPE_CHECKING:  # pragma: no cover
    from prismrec.data import Catalog, Dataset, Interactions, load_dataset
    from prismrec.eval import evaluate
    from prismrec.recommender import Recommender


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'prismrec' has no attribute {name!r}")
