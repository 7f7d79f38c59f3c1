"""Business filters: which items may not be recommended, as a boolean mask over the index.

Unknown ids raise ``UnknownIdError`` rather than being dropped: a blocklist entry that
matches nothing usually means the caller's ids are spelt differently from the catalogue's
(``"42"`` vs ``"0042"``), and silently ignoring it would show blocked items. Callers that
expect stale ids filter them first with ``[i for i in ids if i in item_vocab]``.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from prismrec.data.catalog import Catalog
from prismrec.data.vocab import Vocab
from prismrec.errors import DataError, UnknownIdError

_SHOW = 20  # names listed in an error message


def exclusion_mask(n_items: int, *, exclude_ids: Iterable | None = None,
                   exclude_categories: Iterable[str] | None = None, item_vocab: Vocab,
                   catalog: Catalog | None = None) -> np.ndarray:
    """(n_items,) bool, True for items that must not be recommended.

    ``exclude_ids``: item ids (as in ``item_vocab``). ``exclude_categories``: category names
    matched exactly against the catalogue's ``categories`` lists; an item is excluded when
    any of its categories is listed. Catalogue items missing from ``item_vocab`` are not in
    the index and are skipped. Raises ``UnknownIdError`` for ids not in the vocabulary and
    ``DataError`` for categories no catalogue item has (the message lists the known ones).
    """
    if n_items < len(item_vocab):
        raise ValueError(f"n_items={n_items} is smaller than the item vocabulary "
                         f"({len(item_vocab)} ids); pass len(index)")
    mask = np.zeros(n_items, dtype=bool)
    if exclude_ids is not None:
        ids = list(exclude_ids)
        known = item_vocab.index(ids, missing="-1")
        if (known < 0).any():
            bad = [str(i) for i, j in zip(ids, known, strict=True) if j < 0]
            raise UnknownIdError(f"{len(bad)} excluded item id(s) not in the item vocabulary: "
                                 f"{', '.join(map(repr, bad[:_SHOW]))}"
                                 f"{' ...' if len(bad) > _SHOW else ''}; remove them or "
                                 f"check how the ids are spelt")
        mask[known] = True
    if exclude_categories is not None:
        cats = [str(c) for c in exclude_categories]
        if cats:
            mask |= _category_mask(n_items, cats, item_vocab, catalog)
    return mask


def _category_mask(n_items: int, cats: list[str], item_vocab: Vocab,
                   catalog: Catalog | None) -> np.ndarray:
    if catalog is None or "categories" not in catalog.frame.columns:
        raise DataError("excluding categories needs a catalogue with a 'categories' column; "
                        "pass catalog=")
    per_item = catalog.frame["categories"].explode().dropna()  # index: item id
    known = set(per_item.astype(str))
    unknown = [c for c in cats if c not in known]
    if unknown:
        names = sorted(known)
        raise DataError(f"unknown categor{'y' if len(unknown) == 1 else 'ies'} "
                        f"{', '.join(map(repr, unknown))}; the catalogue has {len(names)}: "
                        f"{', '.join(map(repr, names[:_SHOW]))}"
                        f"{' ...' if len(names) > _SHOW else ''}")
    hit = pd.unique(per_item.index[per_item.astype(str).isin(cats)])
    idx = item_vocab.index(hit, missing="-1")
    mask = np.zeros(n_items, dtype=bool)
    mask[idx[idx >= 0]] = True
    return mask
