"""A fitted recommender's interests, named and explained: profiles and composed lists.

Wires the steps together for one user: ``profile.build_profile`` reads the history through
the model, ``labels.label_interest`` names each interest from catalogue text,
``retrieve.compose`` merges per-interest candidates in proportion to the weights (steered by
mute/boost), and ``reasons.explain_item`` backs each pick with the user's own history items
that contribute most to it (``attribution``).

``recommender`` is any fitted ``prismrec.Recommender`` (``model_``, ``users_``, ``items_``,
``histories_``, ``catalog_``); it is read, never changed.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd
import torch

from prismrec.data.catalog import Catalog
from prismrec.data.vocab import Vocab
from prismrec.errors import UnknownIdError
from prismrec.explain.attribution import (
    Contributions,
    interest_scorer,
    occlusion,
    served_scorer,
)
from prismrec.explain.labels import CatalogText, label_interest
from prismrec.explain.narrate import (
    InterestSummary,
    Narrative,
    Narrator,
    ProfileSummary,
    TemplateNarrator,
)
from prismrec.explain.reasons import explain_item
from prismrec.profile.profile import Profile, build_profile
from prismrec.retrieve.compose import compose
from prismrec.retrieve.filters import exclusion_mask
from prismrec.retrieve.index import ExactIndex

COLUMNS = ["rank", "item", "title", "score", "interest", "interest_label", "reason"]


def catalog_text(recommender, catalog: Catalog | None = None) -> CatalogText:
    """The catalogue's words aligned with the recommender's item indices.

    Without a catalogue (``catalog`` None and none kept by the recommender) items are named by
    their ids.
    """
    cat = catalog if catalog is not None else getattr(recommender, "catalog_", None)
    if cat is None:
        cat = Catalog(pd.DataFrame(index=pd.Index([], dtype=object, name="item")))
    return CatalogText.from_catalog(cat, recommender.items_.to_list())


def _history(recommender, user) -> tuple[np.ndarray, np.ndarray]:
    if not hasattr(recommender, "model_"):
        raise ValueError("this Recommender is not fitted: call fit() or Recommender.load()")
    try:
        r = recommender.users_.index_of(user)
    except UnknownIdError:
        raise UnknownIdError(f"unknown user {Vocab._key(user)!r}: not in the training "
                             "data") from None
    h = recommender.histories_
    return h.row(r), h.row_times(r)


def profile_for(recommender, user, *, catalog: Catalog | None = None,
                texts: CatalogText | None = None, n_items: int = 5,
                min_share: float = 0.0, labeler=None) -> Profile:
    """The named profile of a known user (``Recommender.profile(user)``).

    ``labeler(item_indices, weights, texts) -> InterestLabel`` names each interest from its
    top items; default ``label_interest`` (the catalogue label). ``ChatLabeler`` names them
    with a chat model instead (``Interest.label_source`` is then "llm").
    """
    items, times = _history(recommender, user)
    return profile_of_history(recommender, items, times, user=user, catalog=catalog,
                              texts=texts, n_items=n_items, min_share=min_share,
                              labeler=labeler)


def profile_of_history(recommender, items: np.ndarray, times: np.ndarray | None, *,
                       user=None, catalog: Catalog | None = None,
                       texts: CatalogText | None = None, n_items: int = 5,
                       min_share: float = 0.0, labeler=None) -> Profile:
    """The named profile of a history (model item indices and times, oldest first).

    ``profile_for`` reads the history from the recommender; the live service passes the
    training history plus the events logged since (``prismrec.explain.live_interests``).
    ``labeler`` as in ``profile_for``.
    """
    if len(items) == 0:
        raise ValueError(f"user {user!r} has no events to read a profile from")
    ct = texts if texts is not None else catalog_text(recommender, catalog)
    name = labeler or label_interest
    return build_profile(recommender.model_, items, times, _item_ids(recommender, ct),
                         user=str(user), labeler=lambda i, w: name(i, w, ct),
                         titles=ct.title, n_items=n_items, min_share=min_share)


def _item_ids(recommender, ct: CatalogText):
    """The recommender's item ids by index: the catalogue text's copy when it is aligned
    (built once per catalogue), else a fresh list."""
    n = len(recommender.items_)
    return ct.item_ids if len(ct.item_ids) == n else recommender.items_.to_list()


def summary_of(profile: Profile, *, examples: int = 3) -> ProfileSummary:
    """What a narrator may say: labels, weights, horizons, example titles, first/last seen."""
    return ProfileSummary(tuple(
        InterestSummary(label=i.label, weight=i.weight, horizon=i.horizon,
                        examples=tuple(i.top_titles[:examples]), first_seen=i.first_seen,
                        last_seen=i.last_seen)
        for i in profile.interests))


def narrate_profile(profile: Profile, narrator: Narrator | None = None) -> Narrative:
    """Two or three sentences about the profile (template narrator by default)."""
    return (narrator or TemplateNarrator()).narrate(summary_of(profile))


BOOST = 2.0  # a boosted interest's weight is multiplied by this before renormalising ...
BOOST_FLOOR = 0.2  # ... and raised to at least this, so a faint interest gets slots too


def steer(profile: Profile, mute: Iterable | None = None, boost: Iterable | None = None
          ) -> tuple[np.ndarray, np.ndarray | None]:
    """(weights, muted) for composing: boosted interests' weights times ``BOOST`` and at
    least ``BOOST_FLOOR`` (then all renormalised), muted ones flagged. Ids are interest ids
    (``Interest.component``); an id the user's profile does not have raises
    ``UnknownIdError`` naming the ones it has."""
    ids = [i.component for i in profile.interests]
    w = profile.weights().copy()

    def positions(given, what: str) -> list[int]:
        out = []
        for x in given or ():
            try:
                out.append(ids.index(int(x)))
            except (ValueError, TypeError):
                raise UnknownIdError(
                    f"cannot {what} interest {x!r}: user {profile.user!r} has interests "
                    f"{', '.join(map(str, ids))} (see Recommender.profile)") from None
        return out

    muted_at = positions(mute, "mute")
    boosted_at = positions(boost, "boost")
    if set(muted_at) & set(boosted_at):
        raise ValueError("an interest cannot be both muted and boosted")
    w[boosted_at] = np.maximum(w[boosted_at] * BOOST, BOOST_FLOOR)
    w /= w.sum()
    if not muted_at:
        return w, None
    muted = np.zeros(len(w), dtype=bool)
    muted[muted_at] = True
    if muted.all():
        raise ValueError(f"every interest of user {profile.user!r} is muted: nothing to "
                         "recommend from")
    return w, muted


def _contributions(recommender, items: np.ndarray, times: np.ndarray, targets: np.ndarray,
                   composed: bool) -> Contributions:
    """Occlusion contributions of the history to the targets, by the score that ranked them."""
    model = recommender.model_
    score = (interest_scorer(model) if composed and model.head is not None
             else served_scorer(recommender))
    return occlusion(score, items, times, targets)


def _rows(recommender, ct: CatalogText, prof: Profile, user_items: np.ndarray,
          user_times: np.ndarray, picks: np.ndarray, scores: np.ndarray, tags: np.ndarray,
          composed: bool, verb: str) -> list[dict]:
    ids = _item_ids(recommender, ct)
    contrib = _contributions(recommender, user_items, user_times, picks, composed)
    hist_ids = [ids[i] for i in contrib.items]
    titles = ct.title_map()
    by_id = {i.component: i for i in prof.interests}
    rows = []
    for r, (it, sc, g) in enumerate(zip(picks, scores, tags, strict=True)):
        interest = by_id[int(g)]
        ex = explain_item(ids[it], interest.component, interest.label, contrib.drop[:, r],
                          hist_ids, titles, positions=contrib.position, verb=verb)
        rows.append({"rank": r + 1, "item": ids[it], "title": ct.titles[it] or None,
                     "score": float(sc), "interest": interest.component,
                     "interest_label": interest.label, "reason": ex.reason})
    return rows


def compose_for(recommender, user, k: int = 10, *, diversity: float = 0.0,
                mute: Iterable | None = None, boost: Iterable | None = None,
                exclude_ids: Iterable | None = None,
                exclude_categories: Iterable[str] | None = None, filter_seen: bool = True,
                catalog: Catalog | None = None, verb: str = "viewed",
                candidates_per_interest: int | None = None) -> pd.DataFrame:
    """Top-``k`` composed from the user's interests, each tagged and explained.

    Columns rank, item, title (None where the catalogue has none), score, interest (the
    interest id, ``Interest.component``), interest_label, reason. ``diversity`` λ in [0, 1]:
    0 ranks by relevance ``max_k w_k s_k(item)``, 1 fills slots in proportion to the interest
    weights (see ``retrieve.compose``). ``mute``: interest ids whose items (those scored
    highest by that interest, ``argmax_k s_k``) are all removed, none tagged with them;
    ``boost``: interest ids whose weight is multiplied by ``BOOST`` and raised to at least
    ``BOOST_FLOOR`` (raising their share of the list). A model without an interest head
    composes from its history's k-means clusters (the fallback of
    ``profile.build_profile``). Each reason cites, by title, the history items that
    contribute most to the item's relevance (``explain.attribution``; without a head, to
    the model's own score).
    """
    items, times = _history(recommender, user)
    return compose_for_history(recommender, items, times, user=user, k=k, diversity=diversity,
                               mute=mute, boost=boost, exclude_ids=exclude_ids,
                               exclude_categories=exclude_categories, filter_seen=filter_seen,
                               catalog=catalog, verb=verb,
                               candidates_per_interest=candidates_per_interest)


def _history_inputs(recommender, items, times, user, catalog: Catalog | None,
                    texts: CatalogText | None, profile: Profile | None) -> tuple:
    """(items, times, catalogue text, profile) of a given history; times default to the
    event positions, and the text and profile are built only when not given."""
    items = np.asarray(items, dtype=np.int64)
    times = (np.arange(len(items), dtype=np.float64) if times is None
             else np.asarray(times, dtype=np.float64))
    ct = texts if texts is not None else catalog_text(recommender, catalog)
    prof = profile if profile is not None else profile_of_history(
        recommender, items, times, user=user, catalog=catalog, texts=ct)
    return items, times, ct, prof


def compose_for_history(recommender, items: np.ndarray, times: np.ndarray | None, *,
                        user=None, k: int = 10, diversity: float = 0.0,
                        mute: Iterable | None = None, boost: Iterable | None = None,
                        exclude_ids: Iterable | None = None,
                        exclude_categories: Iterable[str] | None = None,
                        filter_seen: bool = True, catalog: Catalog | None = None,
                        verb: str = "viewed", candidates_per_interest: int | None = None,
                        texts: CatalogText | None = None,
                        profile: Profile | None = None) -> pd.DataFrame:
    """``compose_for`` over a given history (model item indices and times, oldest first).

    ``profile``: the history's profile when the caller already has it (from
    ``profile_of_history`` with the same history and texts), so it is not read twice.
    """
    items, times, ct, prof = _history_inputs(recommender, items, times, user, catalog,
                                             texts, profile)
    weights, muted = steer(prof, mute, boost)
    model = recommender.model_
    with torch.no_grad():
        table = model.output_table().detach().float()  # (N, D)
        bias = (model.out_bias.detach().float() if model.out_bias is not None
                else torch.zeros(len(table)))
    # Inner product with [e_i, b_i] and [v_k, 1] is the model's score s_k(i) = <v_k, e_i> + b_i.
    index = ExactIndex(torch.cat([table, bias[:, None]], 1).numpy())
    queries = np.concatenate([prof.vectors, np.ones((len(prof), 1), np.float32)], 1)
    cat = catalog if catalog is not None else getattr(recommender, "catalog_", None)
    mask = exclusion_mask(len(index), exclude_ids=exclude_ids,
                          exclude_categories=exclude_categories, item_vocab=recommender.items_,
                          catalog=cat)
    m = candidates_per_interest
    while True:
        composed = compose(queries, weights, index, k, diversity=diversity,
                           exclude_items=np.unique(items) if filter_seen else None,
                           exclude_mask=mask if mask.any() else None,
                           candidates_per_interest=m, mute=muted)
        depth = k if m is None else m
        if muted is None or len(composed) >= k or depth >= len(index):
            break
        m = min(2 * depth, len(index))  # muting removed candidates: search deeper
    tags = np.array([prof.interests[int(g)].component for g in composed.interest], np.int64)
    rows = _rows(recommender, ct, prof, items, times, composed.items, composed.scores, tags,
                 True, verb)
    return pd.DataFrame(rows, columns=COLUMNS)


def explain_ranked(recommender, user, picks: np.ndarray, scores: np.ndarray, *,
                   catalog: Catalog | None = None, verb: str = "viewed") -> pd.DataFrame:
    """Tag and explain a ranked list of the model's own (``Recommender.recommend``).

    Same columns as ``compose_for``. Each item's reason cites the history items contributing
    most to its served score (sequence model plus blend); its interest is the one the most
    contributing history item's latest event is assigned to in the user's profile (the
    heaviest interest when no history item contributes positively or that one's interest
    is below the profile's cut).
    """
    items, times = _history(recommender, user)
    return explain_ranked_history(recommender, items, times, picks, scores, user=user,
                                  catalog=catalog, verb=verb)


def explain_ranked_history(recommender, items: np.ndarray, times: np.ndarray | None,
                           picks: np.ndarray, scores: np.ndarray, *, user=None,
                           catalog: Catalog | None = None, verb: str = "viewed",
                           texts: CatalogText | None = None,
                           profile: Profile | None = None) -> pd.DataFrame:
    """``explain_ranked`` for a given history (model item indices and times, oldest first).

    ``texts`` / ``profile``: the catalogue text and the history's profile when the caller
    already has them (as in ``compose_for_history``)."""
    items, times, ct, prof = _history_inputs(recommender, items, times, user, catalog,
                                             texts, profile)
    picks = np.asarray(picks, dtype=np.int64)
    contrib = _contributions(recommender, items, times, picks, False)
    window = len(prof.event_interest)  # the profile reads the model's window
    owner = {int(i): prof.event_interest[p - (len(items) - window)]
             for i, p in zip(contrib.items, contrib.position, strict=True)
             if p >= len(items) - window}
    known = {i.component for i in prof.interests}
    tags = []
    for r in range(len(picks)):
        top = int(np.argmax(contrib.drop[:, r]))
        g = owner.get(int(contrib.items[top]))
        ok = contrib.drop[top, r] > 0 and g in known
        tags.append(g if ok else prof.interests[0].component)
    rows = _rows(recommender, ct, prof, items, times, picks, np.asarray(scores),
                 np.asarray(tags, np.int64), False, verb)
    return pd.DataFrame(rows, columns=COLUMNS)


def plot_profile(profile: Profile, path, *, title: str | None = None):
    """Stacked interest weights over the user's events, labelled; saved to ``path`` (PNG).

    Needs matplotlib (extra ``plot``); drawn with the Agg backend, so no display is needed.
    """
    from pathlib import Path

    from prismrec.errors import require

    require("matplotlib", "plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = np.array([i.weight_history for i in profile.interests])  # (K', T)
    x = np.arange(1, w.shape[1] + 1)
    fig, ax = plt.subplots(figsize=(9, 4), dpi=110)
    labels = [f"{i.label} ({i.horizon}, now {i.weight:.0%})" for i in profile.interests]
    ax.stackplot(x, w, labels=labels, alpha=0.85)
    ax.set_xlim(1, max(int(x[-1]), 2))
    ax.set_ylim(0, 1)
    ax.set_xlabel("event of the user's history (oldest first)")
    ax.set_ylabel("interest weight")
    ax.set_title(title or f"Interests of user {profile.user} over {w.shape[1]} events")
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target)
    plt.close(fig)
    return target
