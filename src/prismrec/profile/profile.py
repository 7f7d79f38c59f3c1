"""The profile a person reads: a user's interests, each with a weight, horizon and history.

``build_profile`` reads one history through a fitted model. With an interest head
(``interests=K``) the components are the head's: each event's assignment, the weights after
every event, the interest vectors. The default decay head finds them per user (online
clustering of the user's own item vectors); on the synthetic bench it matches the true
interests better than k-means on the same item vectors (docs/benchmarks.md, "interests").
A single-vector model has no components of its own, so its history's item vectors are
clustered (k-means, K at most ``FALLBACK_K``) and each cluster's weight over time is its
share of recency-weighted events.

Labels come from the caller (``labeler(item_indices, weights) -> str``): naming interests from
catalogue text is the explain step's job, and the profile step sits to its left
(``prismrec.explain.interests.profile_for`` wires the two).

Stray components: an interest of fewer than ``STRAY_EVENTS`` history events is marked
``stray`` (shown and flagged): one or two events the head could not join to an interest,
usually an item outside what the user follows. Its label describes those items, not an
interest of the user; the benchmark of labels (docs/benchmarks.md, "Interest labels")
counts the established interests and reports the stray ones apart.

Horizon: "short" when an interest's share of the user's recent events (half-life
``SHORT_EVENTS``) is above its share of the lasting ones (half-life ``LONG_EVENTS``), i.e. it
is rising; "long" otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from prismrec.models.base import SequenceEncoder

SHORT_EVENTS = 5.0  # half-life, in events, of the "recent" share behind the horizon
LONG_EVENTS = 50.0  # half-life of the "lasting" share
STRAY_EVENTS = 3  # an interest of fewer history events is marked stray (a stray event or two)
FALLBACK_K = 4  # clusters for a model without an interest head
FALLBACK_HALF_LIFE = 10.0  # events: recency weighting of cluster weights without a head

# labeler(item_indices, weights) -> the label: a str, or an object whose str() is the label
# and whose ``source`` attribute says what named it (``explain.labels.InterestLabel``)
Labeler = Callable[[np.ndarray, np.ndarray], object]


FALLBACKS = {
    "kmeans": (f"the model has no interest head: its interests are k-means clusters (at most "
               f"{FALLBACK_K}) of the user's history item vectors, weighted by recency "
               f"(half-life {FALLBACK_HALF_LIFE:g} events)"),
}


@dataclass
class Interest:
    """One interest of one user; ``weight`` is its share now (the profile's sum to 1)."""

    component: int  # index k of the model's interest (or cluster): the interest's id
    label: str
    weight: float
    horizon: str  # "short" | "long"
    first_seen: float | None  # timestamp of the first event assigned to it
    last_seen: float | None  # ... and of the last
    n_events: int  # history events assigned to it (its argmax)
    top_items: list[str]  # ids of the items of its events (argmax), by assignment mass
    top_titles: list[str]  # their titles (ids where unknown)
    weight_history: list[float]  # weight after each history event (renormalised)
    label_source: str = "items"  # what named it: categories | tags | words | items | llm
    stray: bool = False  # fewer than ``STRAY_EVENTS`` events: not (yet) an interest

    def to_dict(self, *, timeline: bool = False) -> dict:
        """JSON-safe: id, label, label_source, stray, weight, horizon, first/last seen,
        n_events, top items (id, title); with ``timeline`` also the weight after each
        history event."""
        out = {"id": int(self.component), "label": self.label,
               "label_source": self.label_source, "stray": bool(self.stray),
               "weight": float(self.weight),
               "horizon": self.horizon, "first_seen": _num(self.first_seen),
               "last_seen": _num(self.last_seen), "n_events": int(self.n_events),
               "top_items": [{"id": i, "title": t}
                             for i, t in zip(self.top_items, self.top_titles, strict=True)]}
        if timeline:
            out["timeline"] = [float(w) for w in self.weight_history]
        return out


@dataclass
class Profile:
    """A user's interests, heaviest first, and the history events they were read from.

    ``to_dict()`` is the profile document every surface shows (``prismrec profile --json``
    prints it); ``str(profile)`` is a short readable summary.
    """

    user: str | None
    interests: list[Interest]
    event_items: list[str]  # the history read (the model's window for SASRec), oldest first
    event_times: list[float]
    source: str  # "decay" | "comirec" | "kmeans": where the components come from
    vectors: np.ndarray = field(repr=False)  # (K', D) interest vectors, aligned with interests
    event_interest: list[int] = field(default_factory=list)  # component of each event (argmax)
    routing: str | None = None  # decay head: "categories" | "item" (what joined events); else None

    def __len__(self) -> int:
        return len(self.interests)

    def weights(self) -> np.ndarray:
        return np.array([i.weight for i in self.interests], dtype=np.float64)

    @property
    def fallback(self) -> str | None:
        """How the interests were found when the model has no interest head (else None)."""
        return FALLBACKS.get(self.source)

    def to_dict(self, *, timeline: bool = False) -> dict:
        """The profile document (JSON-safe; the vectors are left out).

        ``user``, ``components`` (where the interests come from: the model's head, or
        ``kmeans``), ``routing`` (the decay head's: ``categories`` when events were joined to
        interests by their catalogue categories too, ``item`` by item vectors alone; None for
        other components), ``fallback`` (None, or what the fallback did), ``n_events``, and each
        interest's ``Interest.to_dict``. With ``timeline`` every interest carries its weight
        after each event, and ``events`` lists those events (item id, time), oldest first.
        """
        out = {"user": self.user, "components": self.source, "routing": self.routing,
               "fallback": self.fallback,
               "n_events": len(self.event_items),
               "interests": [i.to_dict(timeline=timeline) for i in self.interests]}
        if timeline:
            out["events"] = [{"item": i, "time": float(t)}
                             for i, t in zip(self.event_items, self.event_times, strict=True)]
        return out

    def __str__(self) -> str:
        how = (f"{self.source} components" if self.fallback is None
               else "k-means clusters of the history: the model has no interest head")
        if self.routing is not None:
            how += (", routed by catalogue categories" if self.routing == "categories"
                    else ", routed by item vectors")
        lines = [f"user {self.user}: {len(self)} interest(s) from {len(self.event_items)} "
                 f"events ({how})"]
        for i in self.interests:
            what = "stray, " if i.stray else ""
            lines.append(f"  [{i.component}] {i.weight:6.1%}  {i.label}  ({what}{i.horizon}, "
                         f"{i.n_events} events)  e.g. {', '.join(i.top_titles[:3])}")
        return "\n".join(lines)


def _num(x: float | None) -> float | None:
    return None if x is None else float(x)


def build_profile(model: SequenceEncoder, items: np.ndarray, times: np.ndarray | None,
                  item_ids: Sequence[str], *, user: str | None = None,
                  labeler: Labeler | None = None, titles: Callable[[int], str] | None = None,
                  n_items: int = 5, min_share: float = 0.0,
                  stray_events: int = STRAY_EVENTS) -> Profile:
    """The profile of one history (model item indices, oldest first) through ``model``.

    ``item_ids[i]`` is the id of item index i. Interests no history event is assigned to are
    left out (nothing in the history supports them), as are those below ``min_share`` of the
    weight; the rest are renormalised. Interests of fewer than ``stray_events`` events are
    marked ``stray`` (they keep their place, weight and part in composition). Without
    ``labeler`` interests are named by the titles of their top items.
    """
    idx = np.asarray(items, dtype=np.int64).ravel()
    if len(idx) == 0:
        raise ValueError("a profile needs at least one event in the history")
    if idx.min() < 0 or idx.max() >= model.n_items:
        raise ValueError(f"history items must be indices in [0, {model.n_items})")
    t = (np.arange(len(idx), dtype=np.float64) if times is None
         else np.asarray(times, dtype=np.float64).ravel())
    if len(t) != len(idx):
        raise ValueError(f"{len(idx)} items but {len(t)} times")
    gaps = np.concatenate([[-1.0], np.diff(t)])  # before windowing: as inference sees them
    if model.max_len is not None:
        idx, t, gaps = idx[-model.max_len:], t[-model.max_len:], gaps[-model.max_len:]
    if model.head is not None:
        assign, w_hist, vectors, source = _head_components(model, idx, gaps)
    else:
        assign, w_hist, vectors, source = _kmeans_components(model, idx)
    title = titles or (lambda i: str(item_ids[i]))
    hard = assign.argmax(1)  # (T,)
    recent = _decayed_share(assign, SHORT_EVENTS)  # (K,)
    lasting = _decayed_share(assign, LONG_EVENTS)
    now = w_hist[-1]
    keep = [k for k in range(assign.shape[1]) if (hard == k).any()]
    total = now[keep].sum() if keep else 0.0
    keep = [k for k in keep if total > 0 and now[k] / total >= min_share] or keep
    norm = w_hist[:, keep].sum(1, keepdims=True)  # (T, 1)
    w_keep = np.divide(w_hist[:, keep], norm, out=np.zeros_like(w_hist[:, keep]),
                       where=norm > 0)  # (T, K')
    out = []
    uniq, where = np.unique(idx, return_inverse=True)  # history items: O(T), not O(catalogue)
    for j, k in enumerate(keep):
        # its items: the events assigned to it (argmax), each by its share of the event
        mass = np.bincount(where, weights=np.where(hard == k, assign[:, k], 0.0),
                           minlength=len(uniq))  # (U,) per distinct history item
        order = np.lexsort((uniq, -mass))[:n_items]  # heaviest first, ties: lower index
        order = order[mass[order] > 0]
        top, mass_top = uniq[order], mass[order]
        if labeler is not None:
            named = labeler(top, mass_top)
            label, named_by = str(named), str(getattr(named, "source", "labeler"))
        else:
            label, named_by = " · ".join(title(int(i)) for i in top[:2]), "items"
        mine = np.flatnonzero(hard == k)
        out.append(Interest(
            component=int(k), label=label, weight=float(w_keep[-1, j]),
            horizon="short" if recent[k] > lasting[k] + 1e-9 else "long",
            first_seen=float(t[mine[0]]), last_seen=float(t[mine[-1]]), n_events=len(mine),
            top_items=[str(item_ids[i]) for i in top], top_titles=[title(int(i)) for i in top],
            weight_history=w_keep[:, j].tolist(), label_source=named_by,
            stray=len(mine) < stray_events))
    order = sorted(range(len(out)), key=lambda j: (-out[j].weight, out[j].component))
    return Profile(user=user, interests=[out[j] for j in order],
                   event_items=[str(item_ids[i]) for i in idx], event_times=t.tolist(),
                   source=source, vectors=vectors[[keep[j] for j in order]],
                   event_interest=[int(x) for x in hard],
                   routing=model.config.interest_route if source == "decay" else None)


@torch.no_grad()
def _head_components(model: SequenceEncoder, idx: np.ndarray, gaps: np.ndarray):
    was = model.training
    model.eval()
    try:
        x = torch.from_numpy(idx)[None]  # (1, T)
        g = torch.from_numpy(gaps)[None] if model.gap_emb is not None else None  # (1, T)
        it = model.interests(x, torch.tensor([len(idx)]), g)
    finally:
        model.train(was)
    assign = it.assignment[0].double().numpy()  # (T, K)
    return (assign, it.weight_history[0].double().numpy(), it.vectors[0].float().numpy(),
            model.config.interest_head)


@torch.no_grad()
def _kmeans_components(model: SequenceEncoder, idx: np.ndarray):
    table = model.output_table().detach().double().numpy()
    x = table[idx]  # (T, D)
    uniq = np.unique(idx)
    k = min(FALLBACK_K, len(uniq))
    labels = kmeans(x, k)
    k = int(labels.max()) + 1
    assign = np.eye(k)[labels]  # (T, K)
    w = np.zeros_like(assign)
    d = 0.5 ** (1.0 / FALLBACK_HALF_LIFE)
    run = np.zeros(k)
    for i in range(len(idx)):
        run = d * run + assign[i]
        w[i] = run / run.sum()
    centers = np.stack([x[labels == j].mean(0) for j in range(k)]).astype(np.float32)
    return assign, w, centers, "kmeans"


def kmeans(x: np.ndarray, k: int, iters: int = 25) -> np.ndarray:
    """Deterministic k-means (farthest-point start) of rows of ``x``: labels (N,) in 0..k-1."""
    n = len(x)
    if k <= 1 or n <= 1:
        return np.zeros(n, dtype=np.int64)
    centers = [x[0]]
    for _ in range(1, k):
        d = ((x[:, None, :] - np.stack(centers)[None]) ** 2).sum(-1).min(1)  # (N,)
        centers.append(x[int(np.argmax(d))])
    c = np.stack(centers)
    labels = np.zeros(n, dtype=np.int64)
    for _ in range(iters):
        labels = ((x[:, None, :] - c[None]) ** 2).sum(-1).argmin(1)
        new = np.stack([x[labels == j].mean(0) if (labels == j).any() else c[j]
                        for j in range(k)])
        if np.allclose(new, c):
            break
        c = new
    used = np.unique(labels)  # duplicate points can leave a centre empty: drop it
    return np.searchsorted(used, labels).astype(np.int64)


def _decayed_share(assign: np.ndarray, half_life: float) -> np.ndarray:
    """Each component's share of the events, weighted 0.5 ** (age / half_life): (K,)."""
    age = np.arange(len(assign))[::-1].astype(np.float64)  # (T,) 0 = the last event
    m = (0.5 ** (age / half_life)) @ assign  # (K,)
    return m / max(m.sum(), 1e-12)
