"""A fitted recommender's interests, named and explained: profiles and composed lists.

Wires the steps together for one user: ``profile.build_profile`` reads the history through
the model, ``labels.label_interest`` names each interest from catalogue text,
``retrieve.compose`` merges per-interest candidates in proportion to the weights, and
``reasons.explain_item`` backs each pick with the user's own history items.

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

COLUMNS = ["rank", "item", "score", "interest", "interest_label", "reason"]


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
                min_share: float = 0.0) -> Profile:
    """The named profile of a known user (``Recommender.profile(user)``)."""
    items, times = _history(recommender, user)
    return profile_of_history(recommender, items, times, user=user, catalog=catalog,
                              texts=texts, n_items=n_items, min_share=min_share)


def profile_of_history(recommender, items: np.ndarray, times: np.ndarray | None, *,
                       user=None, catalog: Catalog | None = None,
                       texts: CatalogText | None = None, n_items: int = 5,
                       min_share: float = 0.0) -> Profile:
    """The named profile of a history (model item indices and times, oldest first).

    ``profile_for`` reads the history from the recommender; the live service passes the
    training history plus the events logged since (``prismrec.explain.live_interests``).
    """
    if len(items) == 0:
        raise ValueError(f"user {user!r} has no events to read a profile from")
    ct = texts if texts is not None else catalog_text(recommender, catalog)
    return build_profile(recommender.model_, items, times, recommender.items_.to_list(),
                         user=str(user), labeler=lambda i, w: label_interest(i, w, ct).text,
                         titles=ct.title, n_items=n_items, min_share=min_share)


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


def compose_for(recommender, user, k: int = 10, *, diversity: float = 0.0,
                exclude_ids: Iterable | None = None,
                exclude_categories: Iterable[str] | None = None, filter_seen: bool = True,
                catalog: Catalog | None = None, verb: str = "viewed",
                candidates_per_interest: int | None = None) -> pd.DataFrame:
    """Top-``k`` composed from the user's interests, each tagged and explained.

    Columns rank, item, score, interest (component index), interest_label, reason.
    ``diversity`` λ in [0, 1]: 0 ranks by relevance ``max_k w_k s_k(item)``, 1 fills slots
    in proportion to the interest weights (see ``retrieve.compose``). A model without an
    interest head composes from its clusters' centroids (see ``profile.build_profile``).
    """
    items, times = _history(recommender, user)
    return compose_for_history(recommender, items, times, user=user, k=k, diversity=diversity,
                               exclude_ids=exclude_ids, exclude_categories=exclude_categories,
                               filter_seen=filter_seen, catalog=catalog, verb=verb,
                               candidates_per_interest=candidates_per_interest)


def compose_for_history(recommender, items: np.ndarray, times: np.ndarray | None, *,
                        user=None, k: int = 10, diversity: float = 0.0,
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
    ct = texts if texts is not None else catalog_text(recommender, catalog)
    prof = profile if profile is not None else profile_of_history(
        recommender, items, times, user=user, catalog=catalog, texts=ct)
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
    composed = compose(queries, prof.weights(), index, k, diversity=diversity,
                       exclude_items=np.unique(items) if filter_seen else None,
                       exclude_mask=mask if mask.any() else None,
                       candidates_per_interest=candidates_per_interest)
    ids = recommender.items_.to_list()
    hist_ids = [ids[i] for i in items]
    hist_vecs = table[torch.from_numpy(items)].numpy()
    titles = ct.title_map()
    rows = []
    for r, (it, sc, g) in enumerate(zip(composed.items, composed.scores, composed.interest,
                                        strict=True)):
        interest = prof.interests[int(g)]
        ex = explain_item(ids[it], interest.component, interest.label, table[it].numpy(),
                          hist_vecs, hist_ids, titles, verb=verb)
        rows.append({"rank": r + 1, "item": ids[it], "score": float(sc),
                     "interest": interest.component, "interest_label": interest.label,
                     "reason": ex.reason})
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
