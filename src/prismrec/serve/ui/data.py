"""What the dashboard shows, as plain dicts: the model card, counts, users, items, the feed.

``Dashboard(recommender)`` reads a checkpoint alone (``prismrec ui``): training histories,
no store, no metrics. ``Dashboard(recommender, live=..., metrics=..., feed=...)`` is the
service's: histories include the events logged in the store, the overview has the
service's own request figures and the live feed. Interests and composed lists come from
``prismrec.explain.live_interests`` -- the same profile and composition code as
``Recommender.profile`` and ``recommend_composed``.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from prismrec.errors import UnknownIdError
from prismrec.explain.labels import CatalogText
from prismrec.explain.live_interests import LiveInterests, steering, user_history
from prismrec.recommender.core import DEFAULT_DIVERSITY
from prismrec.serve.ui.feed import EventFeed
from prismrec.serve.ui.rates import RateMeter

RECENT_EVENTS = 15
MAX_FOUND = 20  # users listed by a search
CARD_METRICS = ("ndcg@10", "hr@10", "mrr@10", "recall@10")  # test metrics on the model card
TEXT_FIELDS = ("title", "description", "brand", "categories", "tags")
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf")  # plotly's default sequence


def when(ts: float | None) -> str:
    """A timestamp as UTC text ("2026-01-02 10:00:00"), "" when unknown."""
    if ts is None or not math.isfinite(ts):
        return ""
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
    except (OverflowError, OSError, ValueError):
        return f"{ts:g}"


def _trained_events(rec) -> int:
    """Events the model trained on (its training record), or every known event for a
    checkpoint without one."""
    tr = getattr(rec, "training_", None)
    return int(len(rec.histories_.items)) if tr is None else int(tr.train_cut.sum())


class Dashboard:
    """The dashboard's reads over one recommender (and, in the service, its live state)."""

    def __init__(self, recommender, *, live=None, metrics=None, feed: EventFeed | None = None,
                 checkpoint_dir: str | Path | None = None,
                 interests: LiveInterests | None = None) -> None:
        self._recommender = recommender
        self.live = live
        self.store = None if live is None else live.store
        self.feed = feed
        self.meter = None if metrics is None else RateMeter(metrics.render)
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.interests = interests or LiveInterests(recommender, self.store,
                                                    current=lambda: self.recommender)

    @property
    def recommender(self):
        """The recommender behind what is served now: in the service, the one whose bundle
        ``live`` serves (after ``POST /v1/items``, the grown copy swapped in)."""
        source = None if self.live is None else getattr(self.live.bundle, "source", None)
        return self._recommender if source is None else source

    @property
    def read_only(self) -> bool:
        return self.live is None

    # -- catalogue words --------------------------------------------------------------------
    def texts(self) -> CatalogText:
        """The catalogue's words, rebuilt when items were added since."""
        return self.interests.texts()

    def title(self, item: str) -> str:
        items = self.recommender.items_
        if item in items:
            return self.texts().title(items.index_of(item))
        return item

    # -- overview ---------------------------------------------------------------------------
    def model_card(self) -> dict[str, Any]:
        rec = self.recommender
        model = rec.model_
        result = getattr(rec, "result_", None)
        card: dict[str, Any] = {
            "model": model.name, "items": len(rec.items_), "users": len(rec.users_),
            "training_events": _trained_events(rec),
            "interest_head": getattr(model.config, "interest_head", None)
            if model.head is not None else None,
            "text_encoder": (rec.text_encoder_ or {}).get("name")
            if getattr(rec, "text_encoder_", None) else None,
            "catalogue_items": 0 if getattr(rec, "catalog_", None) is None else len(rec.catalog_),
            "validation": {} if result is None else {
                k: round(float(v), 4) for k, v in result.best_metrics.items()},
            "best_epoch": None if result is None else result.best_epoch,
            "epochs": None if result is None else result.epochs,
            "checkpoint": None if self.live is None else self.live.checkpoint,
            "dataset": None, "split": None, "trained": None, "test": {},
        }
        folder = self.checkpoint_dir
        if folder is not None:
            source = folder / "source.json"
            if source.is_file():
                try:
                    doc = json.loads(source.read_text(encoding="utf-8"))
                    card["dataset"], card["split"] = doc.get("dataset"), doc.get("split")
                    card["test"] = {k: round(float(v), 4) for k, v in
                                    (doc.get("test_metrics") or {}).items() if k in CARD_METRICS}
                except (OSError, ValueError):
                    card["dataset"] = "(source.json unreadable)"
            weights = folder / "checkpoint.json"
            if weights.is_file():
                card["trained"] = when(weights.stat().st_mtime)
        return card

    def counts(self) -> dict[str, Any]:
        out: dict[str, Any] = {"store": None}
        if self.store is not None:
            stats = self.store.stats()
            out["store"] = {k: v for k, v in stats.items()
                            if k in ("backend", "users", "events", "states")}
        return out

    def service(self) -> dict[str, Any] | None:
        return None if self.meter is None else self.meter.read()

    def overview(self) -> dict[str, Any]:
        return {"card": self.model_card(), **self.counts(), "service": self.service()}

    # -- users ------------------------------------------------------------------------------
    def find_users(self, query: str, limit: int = MAX_FOUND) -> list[str]:
        """User ids containing ``query`` (case-insensitive): training users, then logged
        ones; an exact match first."""
        q = query.strip().lower()
        found: list[str] = []
        seen: set[str] = set()

        def add(u: str) -> None:
            if u not in seen and len(found) < limit:
                seen.add(u)
                found.append(u)

        exact = query.strip()
        if exact and (exact in self.recommender.users_ or (
                self.store is not None and self.store.event_count(exact) > 0)):
            add(exact)
        for u in self.recommender.users_.to_list():
            if len(found) >= limit:
                break
            if q in u.lower():
                add(u)
        if self.store is not None and len(found) < limit:
            for u in self.store.users():
                if q in u.lower():
                    add(u)
                if len(found) >= limit:
                    break
        return found

    def user(self, user: str, *, k: int = 10, diversity: float = DEFAULT_DIVERSITY,
             mute: tuple[int, ...] = (), boost: tuple[int, ...] = ()) -> dict[str, Any]:
        """Everything the user page shows; ``UnknownIdError`` for a user nobody knows.

        ``mute`` / ``boost``: interest ids steering this view only (ids the profile does not
        have are left out); the user's stored preferences apply to the others, as in the
        API's lists. The interests are the rows of ``Profile.to_dict()``."""
        log = self.store.events(user) if self.store is not None else []
        items, times = user_history(self.recommender, user, events=log)
        ids = self.recommender.items_
        recent = self._recent(user, log)
        out: dict[str, Any] = {
            "user": user, "training_events": int(len(items) - sum(e.item in ids for e in log)),
            "logged_events": len(log), "history_events": int(len(items)), "recent": recent,
            "interests": [], "chart": None, "recommendations": [], "source": None,
            "diversity": diversity, "k": k, "message": None, "mute": [], "boost": [],
            "steerable": self.recommender.model_.head is not None}
        if len(items) == 0:
            out["message"] = ("none of this user's events is of an item the model knows, so "
                              "there are no interests to show yet")
            return out
        prof = self.interests.profile(user, items, times)
        doc = prof.to_dict()
        have = {i["id"] for i in doc["interests"]}
        stored = self.store.preferences(user) if self.store is not None else []
        st = steering(stored, [m for m in mute if m in have], [b for b in boost if b in have],
                      prof)
        saved = {p.interest: p.steer for p in stored}
        out["source"] = doc["components"]
        out["mute"], out["boost"] = list(st.mute), list(st.boost)
        out["interests"] = [{
            **i, "first_seen_text": when(i["first_seen"]), "last_seen_text": when(i["last_seen"]),
            "steer": "mute" if i["id"] in st.mute else "boost" if i["id"] in st.boost else None,
            "stored": saved.get(i["id"])} for i in doc["interests"]]
        out["chart"] = timeline(prof, self.title)
        try:
            recs = self.interests.composed(user, items, times, k=k, diversity=diversity,
                                           profile=prof, steer=st)
        except ValueError as exc:  # every interest muted
            out["message"] = str(exc)
            return out
        out["recommendations"] = [{
            "rank": int(r.rank), "item": r.item, "title": self.title(r.item),
            "score": float(r.score), "interest": int(r.interest),
            "interest_label": r.interest_label, "reason": r.reason}
            for r in recs.itertuples(index=False)]
        return out

    def _recent(self, user: str, log: list) -> list[dict[str, Any]]:
        """The last events, newest first: training history and log merged in time order
        (log events of items the model does not know included, marked)."""
        ids = self.recommender.items_
        rows: list[tuple[float, int, str, str]] = []  # (time, order, item, event)
        if user in self.recommender.users_:
            r = self.recommender.users_.index_of(user)
            h = self.recommender.histories_
            items, times = h.row(r)[-RECENT_EVENTS:], h.row_times(r)[-RECENT_EVENTS:]
            rows += [(float(t), 0, i, "training")
                     for i, t in zip(ids.ids(items), times.tolist(), strict=True)]
        rows += [(e.timestamp, 1, e.item, e.event) for e in log[-RECENT_EVENTS:]]
        rows.sort(key=lambda x: (x[0], x[1]))  # stable: training before the log at a tie
        return [{"item": i, "title": self.title(i), "time": when(t), "timestamp": t,
                 "event": ev, "known": i in ids} for t, _, i, ev in rows[-RECENT_EVENTS:]][::-1]

    def set_preference(self, user: str, interest: int, steer: str | None) -> None:
        """Store the user's preference for one interest (the service's store)."""
        if self.store is None:
            raise ValueError("this dashboard reads a checkpoint alone: there is no store to "
                             "keep preferences in")
        if self.recommender.model_.head is None:
            raise ValueError("this model has no interest head: its interests are k-means "
                             "clusters renumbered as the history grows, so they cannot be "
                             "stored; mute and boost steer the view only")
        self.store.set_preference(user, interest, steer)

    def user_log_size(self, user: str) -> int:
        return 0 if self.store is None else self.store.event_count(user)

    # -- items ------------------------------------------------------------------------------
    def item(self, item: str, k: int = 10) -> dict[str, Any]:
        rec = self.recommender
        if item not in rec.items_:
            raise UnknownIdError(f"unknown item {item!r}: not in the model's catalogue")
        fields: dict[str, str] = {}
        cat = getattr(rec, "catalog_", None)
        if cat is not None and item in cat:
            row = cat.rows([item]).iloc[0]
            for f in TEXT_FIELDS:
                if f in row.index:
                    v = row[f]
                    text = ", ".join(map(str, v)) if isinstance(v, (list, tuple, np.ndarray)) \
                        else ("" if v is None or (isinstance(v, float) and math.isnan(v))
                              else str(v))
                    if text:
                        fields[f] = text
        near = rec.similar_items(item, k)
        return {"item": item, "title": self.title(item), "fields": fields,
                "similar": [{"rank": int(r), "item": i, "title": self.title(i),
                             "similarity": float(s)}
                            for r, i, s in zip(near["rank"], near["item"], near["score"],
                                               strict=True)]}

    def can_search(self) -> bool:
        return self.recommender.model_.items.proj is not None

    def search(self, text: str, k: int = 10) -> list[dict[str, Any]]:
        found = self.recommender.search(text, k)
        return [{"rank": int(r), "item": i, "title": self.title(i), "score": float(s)}
                for r, i, s in zip(found["rank"], found["item"], found["score"], strict=True)]

    # -- live -------------------------------------------------------------------------------
    def feed_after(self, seq: int) -> dict[str, Any]:
        if self.feed is None:
            return {"available": False, "last": 0, "events": []}
        new, last = self.feed.after(seq)
        return {"available": True, "last": last, "events": [
            {"seq": f.seq, "user": f.event.user, "item": f.event.item,
             "title": self.title(f.event.item), "event": f.event.event,
             "time": when(f.event.timestamp), "received": when(f.received)}
            for f in new]}


def timeline(prof, title_of) -> dict[str, Any]:
    """The interest timeline as plotly.js traces: stacked weights after each event.

    Each trace carries both x axes (``x`` event index, ``customdata`` time and title), so
    the page switches between them without asking the server again.
    """
    n = len(prof.event_items)
    index = list(range(1, n + 1))
    times = [when(t) for t in prof.event_times]
    titles = []
    for it in prof.event_items:
        title = title_of(it)
        titles.append(title if title == it else f"{title} ({it})")
    traces = []
    for j, i in enumerate(prof.interests):
        color = COLORS[i.component % len(COLORS)]  # an interest keeps its colour as it moves
        # one hover box per x: the top trace (listed first) names the event, each its weight
        head = "event %{customdata[2]} · %{customdata[0]}<br>%{customdata[1]}<br>" \
            if j == len(prof.interests) - 1 else ""
        traces.append({
            "type": "scatter", "mode": "lines", "stackgroup": "one", "name": _escape(i.label),
            "line": {"color": color}, "fillcolor": color + "99",
            "x": index, "y": [round(w, 4) for w in i.weight_history],
            "customdata": [[t, _escape(s), n] for t, s, n in zip(times, titles, index,
                                                                  strict=True)],
            "hovertemplate": head + _escape(i.label) + ": %{y:.0%}<extra></extra>"})
    return {"traces": traces, "times": times, "index": index}


def _escape(text: str) -> str:
    """Plotly hover templates read %{...} and <tags>: keep a label literal."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("%", "&#37;").replace("{", "&#123;"))
