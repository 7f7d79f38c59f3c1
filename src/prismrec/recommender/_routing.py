"""Routing vectors from the catalogue's own structure, for category routing of the decay head.

The decay head joins each event to one of the user's interests by cosine similarity. Item
vectors learned from co-occurrence need not group a catalogue the way people read it (two
dramas and a comedy a user watched the same week sit close together), so a model built with
``interest_route="categories"`` also routes by a fixed vector per item made from its
catalogue categories (``route_weight`` is the category cosine's share): interests follow the
catalogue's own structure when it has one. The vectors are computed once, when the model is
fitted, and are saved with its weights.

``interest_route="auto"`` (the default) routes by categories whenever the decay head is on
(``interests=K``, ``interest_head="decay"``) and the catalogue given to fit has a category
for at least one training item (``has_categories``); otherwise by item vectors. The fitted
model's ``config.interest_route`` says which ("categories" or "item").

Vector: multi-hot over the catalogue's ``MAX_CATEGORIES`` most frequent categories (ties:
alphabetical), each weighted by its inverse document frequency ``log(N / df)`` so a category
half the catalogue has says less than a rare one, then scaled to unit length. An item with
no categories (or only rarer ones) has a zero vector and is routed by its item vector alone.
"""

from __future__ import annotations

import numpy as np

from prismrec.data.catalog import Catalog

MAX_CATEGORIES = 64  # routing state grows by this per interest slot: K (D + C + 2) floats


def has_categories(catalog: Catalog | None, item_ids: list[str]) -> bool:
    """Whether ``catalog`` gives at least one of ``item_ids`` a category."""
    if catalog is None or "categories" not in catalog.frame.columns:
        return False
    return any(len(cs) for cs in catalog.lists(item_ids, "categories"))


def category_vectors(catalog: Catalog | None, item_ids: list[str],
                     max_categories: int = MAX_CATEGORIES) -> np.ndarray:
    """(N, C) float32 routing vectors of ``item_ids`` (rows in that order), C <= max.

    Raises ``ValueError`` when the catalogue gives none of the items a category."""
    if catalog is None or "categories" not in catalog.frame.columns:
        raise ValueError("interest_route='categories' routes by the catalogue's categories: "
                         "fit with a catalogue that has a 'categories' column")
    cats = catalog.lists(item_ids, "categories")
    count: dict[str, int] = {}
    for cs in cats:
        for c in set(cs):
            count[c] = count.get(c, 0) + 1
    if not count:
        raise ValueError("interest_route='categories': no item of the training data has a "
                         "category in the catalogue")
    names = sorted(count, key=lambda c: (-count[c], c))[:max_categories]
    col = {c: j for j, c in enumerate(names)}
    n = len(item_ids)
    idf = np.log(n / np.array([count[c] for c in names], dtype=np.float64))  # (C,)
    out = np.zeros((n, len(names)), dtype=np.float64)
    for i, cs in enumerate(cats):
        for c in set(cs):
            if c in col:
                out[i, col[c]] = idf[col[c]]
    norms = np.linalg.norm(out, axis=1, keepdims=True)  # (N, 1)
    out = np.divide(out, norms, out=np.zeros_like(out), where=norms > 0)
    return out.astype(np.float32)
