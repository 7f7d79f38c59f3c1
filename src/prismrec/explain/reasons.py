"""Per-item reasons: which interest a recommendation serves and which past items support it.

A reason names the interest (by its label) and the history items that contribute most to the
recommendation by the model's own scoring (``explain.attribution``: what the score loses
when the item leaves the history), by title, so every "because you viewed ..." points at the
real events of this user that made the recommendation, never at an arbitrary recent item or
at text made up for the occasion. ``supporting_items`` (cosine of item vectors) is the
earlier, weaker rule, kept as the reference the deletion benchmark compares against.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

_MAX_TITLE = 60  # characters of a title quoted in a reason


@dataclass(frozen=True)
class Support:
    """One history item backing a recommendation: its id, title and contribution.

    ``contribution``: how much the recommendation's score falls without this item
    (``explain.attribution``); ``position``: its latest index in the history.
    """

    item_id: str
    title: str
    contribution: float
    position: int


@dataclass(frozen=True)
class Explanation:
    """Why one item was recommended: the interest it serves and the history that supports it."""

    item_id: str
    interest: int
    interest_label: str
    supporting: tuple[Support, ...] = field(default_factory=tuple)
    reason: str = ""

    @property
    def supporting_ids(self) -> list[str]:
        return [s.item_id for s in self.supporting]

    @property
    def supporting_titles(self) -> list[str]:
        return [s.title for s in self.supporting]

    def to_dict(self) -> dict:
        return {"item_id": self.item_id, "interest": self.interest,
                "interest_label": self.interest_label,
                "supporting": [{"item_id": s.item_id, "title": s.title,
                                "contribution": s.contribution} for s in self.supporting],
                "reason": self.reason}


def supporting_items(
    candidate_vec: np.ndarray,
    history_vecs: np.ndarray,
    history_item_ids: Sequence[str],
    k: int = 2,
    *,
    min_similarity: float = 0.0,
) -> list[tuple[str, float, int]]:
    """The ``k`` distinct history items most similar (cosine) to the recommended item.

    The embedding-similarity rule; reasons cite by contribution instead (``explain_item``).

    Returns (item_id, similarity, position) best first. An item seen several times counts
    once, at its latest position; equal similarities prefer the more recent item. Items whose
    similarity is not above ``min_similarity`` are left out: a reason should not cite an item
    that points away from the recommendation.
    """
    cand = np.asarray(candidate_vec, dtype=np.float64).ravel()  # (D,)
    hist = np.asarray(history_vecs, dtype=np.float64)  # (H, D)
    if hist.ndim != 2 or (hist.shape[0] and hist.shape[1] != cand.shape[0]):
        raise ValueError(f"history_vecs must be (H, {cand.shape[0]}) to match candidate_vec, "
                         f"got shape {hist.shape}")
    if len(history_item_ids) != hist.shape[0]:
        raise ValueError(f"history_item_ids has {len(history_item_ids)} ids for "
                         f"{hist.shape[0]} history vectors")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    if hist.shape[0] == 0 or k == 0:
        return []
    norms = np.linalg.norm(hist, axis=1) * np.linalg.norm(cand)  # (H,)
    dots = hist @ cand  # (H,)
    sims = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    pos = np.arange(len(sims))
    order = np.lexsort((-pos, -sims))  # best similarity first, then most recent
    out: list[tuple[str, float, int]] = []
    seen: set[str] = set()
    for p in order:
        if sims[p] <= min_similarity or len(out) == k:
            break
        item = str(history_item_ids[p])
        if item in seen:
            continue
        seen.add(item)
        out.append((item, float(sims[p]), int(p)))
    return out


def reason_text(label: str, titles: Sequence[str], *, verb: str = "viewed") -> str:
    """One line: "serves your interest in <label>; because you <verb> A and B"."""
    head = f"serves your interest in {label}"
    names = [_short(t) for t in titles]
    if not names:
        return head
    if len(names) == 1:
        said = names[0]
    else:
        said = ", ".join(names[:-1]) + " and " + names[-1]
    return f"{head}; because you {verb} {said}"


def explain_item(
    item_id: str,
    interest: int,
    interest_label: str,
    contributions: np.ndarray,
    history_item_ids: Sequence[str],
    titles: Mapping[str, str],
    *,
    positions: Sequence[int] | None = None,
    k: int = 2,
    verb: str = "viewed",
) -> Explanation:
    """The explanation of one recommended item from its history items' contributions.

    ``contributions[u]`` is distinct history item ``history_item_ids[u]``'s contribution to
    the item's score (``explain.attribution.occlusion``); the ``k`` largest positive ones are
    cited, by title (``titles`` maps id to title; the id where absent), largest first, ties
    to the more recent (``positions``, default the order given). An item that lowers the
    score is never cited. ``verb`` fits the domain: "viewed", "watched", "bought".
    """
    c = np.asarray(contributions, dtype=np.float64).ravel()
    if len(c) != len(history_item_ids):
        raise ValueError(f"{len(c)} contributions for {len(history_item_ids)} history items")
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    pos = np.arange(len(c)) if positions is None else np.asarray(positions, dtype=np.int64)
    order = np.lexsort((-pos, -np.nan_to_num(c, nan=-np.inf)))
    support = tuple(Support(str(history_item_ids[u]), titles.get(str(history_item_ids[u]))
                            or str(history_item_ids[u]), float(c[u]), int(pos[u]))
                    for u in order[:k] if c[u] > 0)
    reason = reason_text(interest_label, [s.title for s in support], verb=verb)
    return Explanation(str(item_id), int(interest), interest_label, support, reason)


def _short(title: str) -> str:
    title = " ".join(str(title).split())
    if len(title) <= _MAX_TITLE:
        return title
    cut = title[:_MAX_TITLE].rsplit(" ", 1)[0]
    return cut + "…"
