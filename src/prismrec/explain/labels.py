"""Naming an interest from the items that define it: catalogue structure first, words second.

An interest component is a direction in item space; a person reads it through the items closest
to it. The label comes from the catalogue's structured fields first: the categories (MovieLens
genres, Amazon categories, synthetic shop categories) that most of the defining items share
(a weighted share of at least ``category_share`` and above the category's share of the
catalogue), then, where no category does, the tags (music tags, MovieLens tag applications) in
the same way; when none is shared by most items, the most common ones name the mixed interest.
Up to ``n_facets`` such names make the label ("Comedy · Romance"). Only when the items have no
category or tag at all is the label built from words (title, brand, description): what
those items say more often than the catalogue as a whole does, the weighted mean TF-IDF of the
defining items minus the catalogue's mean. ``InterestLabel.source`` says which of
``"categories"``, ``"tags"``, ``"words"`` or ``"items"`` (item titles, when nothing else is
known) named it. No word list is hard-coded, so labels follow whatever catalogue the model
serves.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType

import numpy as np
import pandas as pd
from scipy import sparse

from prismrec.data.catalog import Catalog, list_values
from prismrec.explain._words import same_word, tokenize

# Per-field weight of a token occurrence: titles and categories say what an item is,
# descriptions mostly how it is sold.
FIELD_WEIGHTS = {"title": 2.0, "categories": 2.0, "brand": 1.0, "tags": 1.5, "description": 1.0}
_MAX_DESCRIPTION = 1000  # characters of description read per item; bounds work on long texts
SEP = " · "


@dataclass(frozen=True)
class InterestLabel:
    """A short human name for an interest.

    ``text`` is what to show: the ``facets`` (shared categories or tags, strongest first)
    joined by " · ", or, when the items share none, the distinctive words. ``source`` says
    which: "categories", "tags", "words" or "items" (titles of the heaviest items).
    ``category`` is the leading category (None unless ``source == "categories"``) with its
    weighted ``category_share``. ``words`` are the ``n_words`` most distinctive words, best
    first, with ``word_scores`` (weighted mean TF-IDF minus catalogue mean), whatever the
    source.
    """

    text: str
    words: tuple[str, ...]
    word_scores: tuple[float, ...]
    category: str | None = None
    category_share: float | None = None
    facets: tuple[str, ...] = ()
    source: str = "words"

    def __str__(self) -> str:
        return self.text

    def to_dict(self) -> dict:
        return {"text": self.text, "words": list(self.words),
                "word_scores": list(self.word_scores), "category": self.category,
                "category_share": self.category_share, "facets": list(self.facets),
                "source": self.source}


@dataclass(frozen=True, eq=False)
class CatalogText:
    """The catalogue's words as a row-normalised TF-IDF matrix aligned with item indices.

    Built once per catalogue (``from_catalog``); row i describes ``item_ids[i]``, so item
    indices from a model's vocabulary select rows directly. Items absent from the catalogue
    get empty rows and are named by their id when nothing else is known.
    """

    item_ids: tuple[str, ...]
    titles: tuple[str, ...]  # "" where unknown
    vocabulary: tuple[str, ...]  # sorted, so column order breaks score ties alphabetically
    tfidf: sparse.csr_matrix  # (N, V) float64, rows of unit L2 norm (or empty)
    mean: np.ndarray  # (V,) catalogue mean of tfidf rows
    category_names: tuple[str, ...]  # sorted
    categories: sparse.csr_matrix  # (N, C) 0/1: item i is in category c
    category_base: np.ndarray  # (C,) share of catalogue items in each category
    tag_names: tuple[str, ...] = ()  # sorted
    tags: sparse.csr_matrix | None = None  # (N, G) 0/1: item i carries tag g
    tag_base: np.ndarray | None = None  # (G,) share of catalogue items with each tag

    def __len__(self) -> int:
        return len(self.item_ids)

    @classmethod
    def from_catalog(cls, catalog: Catalog, item_ids: list[str]) -> CatalogText:
        """Tokenise every item's text fields; ``item_ids[i]`` is the item with index i."""
        ids = [str(i) for i in item_ids]
        rows = catalog.rows(ids)
        n = len(ids)
        titles = _strings(rows, "title", n)
        item_cats = list_values(rows, "categories")
        item_tags = list_values(rows, "tags")
        fields = {"title": titles,
                  "categories": [" ; ".join(c) for c in item_cats],
                  "brand": _strings(rows, "brand", n),
                  "tags": [" ; ".join(t) for t in item_tags],
                  "description": [s[:_MAX_DESCRIPTION] for s in _strings(rows, "description", n)]}
        counts: list[Counter] = []
        for i in range(n):
            brand = set(tokenize(fields["brand"][i]))
            c: Counter = Counter()
            for field, weight in FIELD_WEIGHTS.items():
                for tok in tokenize(fields[field][i]):
                    if field == "brand" or tok not in brand:  # a brand counts once, as a brand
                        c[tok] += weight
            counts.append(c)
        tfidf, vocab = _tfidf(counts)
        cat_names, cmat, base = _membership(item_cats)
        tag_names, tmat, tag_base = _membership(item_tags)
        mean = np.asarray(tfidf.mean(axis=0)).ravel() if n else np.zeros(len(vocab))
        return cls(tuple(ids), tuple(titles), tuple(vocab), tfidf, mean,
                   tuple(cat_names), cmat, base, tuple(tag_names), tmat, tag_base)

    def title_map(self) -> Mapping[str, str]:
        """Item id -> title for the items that have one (what ``explain_item`` takes); built
        once per catalogue text and shared, read-only."""
        return self._title_map

    @cached_property
    def _title_map(self) -> Mapping[str, str]:
        return MappingProxyType({i: t for i, t in zip(self.item_ids, self.titles, strict=True)
                                 if t})

    def title(self, index: int) -> str:
        """The item's title, or its id where the catalogue has none."""
        return self.titles[index] or self.item_ids[index]


def label_interest(
    item_indices: np.ndarray,
    weights: np.ndarray | None,
    catalog_texts: CatalogText,
    *,
    n_words: int = 3,
    n_facets: int = 2,
    category_share: float = 0.6,
    category_lift: float = 1.5,
) -> InterestLabel:
    """Name the interest defined by ``item_indices`` (weighted by ``weights``, default equal).

    Categories name the interest when the items have any, else tags, else words. A category
    is *shared* when its weighted share of the items is at least ``category_share`` and at
    least ``category_lift`` times its share of the catalogue; up to ``n_facets`` shared ones
    name it, the largest share * log(lift) first (the most specific that still covers most
    items). When none is shared the interest is mixed: its ``n_facets`` most common
    categories name it, the largest share first. A category every catalogue item has never
    names one. Without categories or tags the ``n_words`` most distinctive words name it.
    Deterministic: ties go to the alphabetically first word, category or tag.
    """
    if n_words < 1:
        raise ValueError(f"n_words must be >= 1, got {n_words}")
    if n_facets < 1:
        raise ValueError(f"n_facets must be >= 1, got {n_facets}")
    idx, w = _check_items(item_indices, weights, len(catalog_texts))
    ranked, scores = _distinctive_words(idx, w, catalog_texts, n_words)
    words, scores = ranked[:n_words], scores[:n_words]

    ct = catalog_texts
    for source, names_, member, base in (
            ("categories", ct.category_names, ct.categories, ct.category_base),
            ("tags", ct.tag_names, ct.tags, ct.tag_base)):
        if member is None:
            continue
        found = (_shared(idx, w, names_, member, base, category_share, category_lift)
                 or _shared(idx, w, names_, member, base, 0.0, 1.0 + 1e-9, by_share=True))
        if found:  # shared by most items, else the most common ones: a mixed interest
            names = [c for c, _ in found[:n_facets]]
            lead, share = found[0] if source == "categories" else (None, None)
            return InterestLabel(SEP.join(names), tuple(words), tuple(scores), lead, share,
                                 tuple(names), source)
    if words:
        return InterestLabel(SEP.join(words), tuple(words), tuple(scores), source="words")
    order = np.lexsort((idx, -w))  # no text at all: name it by its heaviest items
    seen = dict.fromkeys(catalog_texts.title(int(i)) for i in idx[order])
    return InterestLabel(SEP.join(list(seen)[:n_words]), (), (), source="items")


def defining_items(
    interest_vector: np.ndarray, item_vectors: np.ndarray, m: int = 20
) -> tuple[np.ndarray, np.ndarray]:
    """The ``m`` items closest (cosine) to an interest vector, weighted by positive similarity.

    The usual input to ``label_interest`` when an interest is a vector in item space.
    Returns (indices, weights), most similar first; ties go to the lower index.
    """
    v = np.asarray(interest_vector, dtype=np.float64).ravel()  # (D,)
    items = np.asarray(item_vectors, dtype=np.float64)  # (N, D)
    if items.ndim != 2 or items.shape[1] != v.shape[0]:
        raise ValueError(f"item_vectors must be (N, {v.shape[0]}) to match the interest "
                         f"vector, got shape {items.shape}")
    if m < 1:
        raise ValueError(f"m must be >= 1, got {m}")
    sims = _cosine(v, items)  # (N,)
    order = np.lexsort((np.arange(len(sims)), -sims))[:m]
    w = np.clip(sims[order], 0.0, None)
    if not (w > 0).any():
        w = np.ones(len(order))
    return order.astype(np.int64), w


# --- internals ------------------------------------------------------------------------------


def _check_items(item_indices, weights, n: int) -> tuple[np.ndarray, np.ndarray]:
    idx = np.asarray(item_indices)
    if idx.ndim != 1 or idx.size == 0:
        raise ValueError(f"item_indices must be a non-empty 1-d array, got shape {idx.shape}")
    if idx.dtype.kind not in "iu":
        raise ValueError(f"item_indices must be integers (item indices), got dtype {idx.dtype}")
    if idx.min() < 0 or idx.max() >= n:
        raise ValueError(f"item indices must lie in 0..{n - 1} (the catalogue text has {n} "
                         f"items), got {idx.min()}..{idx.max()}")
    if weights is None:
        w = np.ones(idx.size)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != idx.shape:
            raise ValueError(f"weights must have the shape of item_indices {idx.shape}, "
                             f"got {w.shape}")
        if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
            raise ValueError("weights must be finite, non-negative and not all zero")
    order = np.argsort(idx, kind="stable")  # sums in one order: the label ignores input order
    return idx[order].astype(np.int64), w[order] / w.sum()


def _distinctive_words(idx, w, ct: CatalogText, k: int) -> tuple[list[str], list[float]]:
    sub = ct.tfidf[idx].tocoo()
    if sub.nnz == 0:
        return [], []
    cols, inv = np.unique(sub.col, return_inverse=True)
    mean_in = np.bincount(inv, weights=sub.data * w[sub.row])  # weighted mean over the items
    score = mean_in - ct.mean[cols]
    order = np.lexsort((cols, -score))  # vocabulary is sorted: ties go alphabetically
    words: list[str] = []
    scores: list[float] = []
    for j in order:
        if score[j] <= 0 or len(words) == k:
            break
        wd = ct.vocabulary[cols[j]]
        if any(same_word(wd, x) for x in words):
            continue
        words.append(wd)
        scores.append(float(score[j]))
    return words, scores


def _shared(idx, w, names, member, base, min_share: float, min_lift: float, *,
            by_share: bool = False) -> list[tuple[str, float]]:
    """(name, weighted share) of the facets most of the items share, best first.

    Best: the largest share * log(lift), or with ``by_share`` the largest share (ties: the
    larger lift). Facets every catalogue item has (lift 1) never qualify.
    """
    if not names:
        return []
    share = np.asarray(member[idx].T @ w).ravel()  # (C,) weighted share per facet
    with np.errstate(divide="ignore", invalid="ignore"):
        lift = np.where(base > 0, share / base, 0.0)
    ok = (share >= min_share - 1e-12) & (share > 0) & (lift >= min_lift) & (lift > 1.0)
    if not ok.any():
        return []
    if by_share:
        order = np.lexsort((np.arange(len(share)), -lift, -share))
    else:
        merit = np.where(ok, share * np.log(np.maximum(lift, 1.0)), -np.inf)
        order = np.lexsort((np.arange(len(merit)), -merit))
    return [(names[j], float(share[j])) for j in order if ok[j]]


def _membership(lists: list[list[str]]) -> tuple[list[str], sparse.csr_matrix, np.ndarray]:
    """Sorted names, the (N, C) 0/1 matrix of who has which, and each name's catalogue share."""
    n = len(lists)
    names = sorted({c for row in lists for c in row})
    col = {c: j for j, c in enumerate(names)}
    r = [i for i, row in enumerate(lists) for _ in dict.fromkeys(row)]
    c = [col[x] for row in lists for x in dict.fromkeys(row)]
    m = sparse.csr_matrix((np.ones(len(r)), (r, c)), shape=(n, len(names)))
    base = np.asarray(m.mean(axis=0)).ravel() if n else np.zeros(len(names))
    return names, m, base


def _tfidf(counts: list[Counter]) -> tuple[sparse.csr_matrix, list[str]]:
    """Sublinear tf (1 + log weighted count) times smooth idf, rows L2-normalised."""
    vocab = sorted({t for c in counts for t in c})
    col = {t: j for j, t in enumerate(vocab)}
    n = len(counts)
    indptr = np.zeros(n + 1, dtype=np.int64)
    indices: list[int] = []
    data: list[float] = []
    for i, c in enumerate(counts):
        for tok, cnt in c.items():
            indices.append(col[tok])
            data.append(1.0 + math.log(cnt))
        indptr[i + 1] = len(indices)
    m = sparse.csr_matrix((np.asarray(data, dtype=np.float64), np.asarray(indices, np.int64),
                           indptr), shape=(n, len(vocab)))
    m.sort_indices()
    df = np.bincount(m.indices, minlength=len(vocab))
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    m = m @ sparse.diags(idf)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    m = sparse.diags(np.divide(1.0, norms, out=np.zeros_like(norms), where=norms > 0)) @ m
    return sparse.csr_matrix(m), vocab


def _strings(rows: pd.DataFrame, col: str, n: int) -> list[str]:
    if col not in rows.columns:
        return [""] * n
    return ["" if (v is None or (isinstance(v, float) and math.isnan(v))) else str(v)
            for v in rows[col].tolist()]


def _cosine(v: np.ndarray, items: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(items, axis=1) * np.linalg.norm(v)  # (N,)
    dots = items @ v  # (N,)
    return np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
