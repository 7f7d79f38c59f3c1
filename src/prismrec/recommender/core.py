"""The ``Recommender`` class: fitting, scoring and recommending; the rest is delegated.

Item text (``_text``), streaming (``_stream``), persistence (``_persist``) and the
item-item blend (``_blend``) are plain functions taking the recommender; the methods here
are their public face. See the package docstring for the whole picture.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from prismrec.data.catalog import Catalog
from prismrec.data.dataset import Dataset
from prismrec.data.interactions import Interactions
from prismrec.data.sequences import Sequences
from prismrec.data.split import EvalCases, Split
from prismrec.data.vocab import Vocab
from prismrec.errors import DataError, UnknownIdError
from prismrec.models import MODELS, EncoderConfig, SequenceEncoder
from prismrec.models.item_item import blend_bytes, check_memory, check_size
from prismrec.profile.live.bundle import Served
from prismrec.profile.live.state import UserState
from prismrec.ranking import topk
from prismrec.recommender import (
    _blend,
    _cold,
    _defaults,
    _persist,
    _provenance,
    _routing,
    _stream,
    _text,
)
from prismrec.recommender._blend import BlendConfig
from prismrec.recommender._defaults import Choices
from prismrec.recommender._stream import StreamUpdate
from prismrec.retrieve.filters import exclusion_mask
from prismrec.train.config import TrainConfig
from prismrec.train.device import resolve_device
from prismrec.train.inference import encode_sequences, score_sequences
from prismrec.train.trainer import Trainer, TrainResult

if TYPE_CHECKING:  # prismrec.text loads lazily: id-only users never pay for it
    from prismrec.profile.live import LiveBundle
    from prismrec.text import TextEncoder, TextTemplate


def holdout_last(seqs: Sequences, min_events: int = 3) -> tuple[Sequences, EvalCases]:
    """(training rows without each user's last event, cases predicting that event).

    Users with fewer than ``min_events`` events keep everything and get no case.
    """
    n = seqs.lengths
    ok = n >= min_events
    train = seqs.head(np.where(ok, n - 1, n))
    rows = np.flatnonzero(ok)
    last = seqs.mask(np.repeat(ok, n) & (seqs.positions() == np.repeat(n - 1, n)))
    return train, EvalCases(rows, train.take(rows), last.take(rows))


log = logging.getLogger(__name__)

# recommend_composed's λ (and recommend's when mute/boost are given without diversity): the
# largest λ whose validation NDCG@10 stays within 2% of λ=0's on ml-100k and Scientific
# (validation cases only, heads routed by item vectors, the routing before "auto";
# docs/benchmarks.md "Composition: the default diversity")
DEFAULT_DIVERSITY = 0.25


def _place_untrained(model: SequenceEncoder, train: Sequences, valid: EvalCases | None,
                     filter_seen: bool, chosen: _cold.ColdPlacement | None = None
                     ) -> _cold.ColdPlacement:
    """Items with no training event are placed from their text as added items are
    (``_cold``): by the placement chosen on ``valid`` (or ``chosen``'s scale and shift, with
    this model's mean bias), which is returned for ``add_items``."""
    trained = torch.from_numpy(np.bincount(train.items, minlength=model.n_items) > 0)
    n = model.reset_untrained(trained)  # zero ID row, mean bias (id-only models: nothing)
    if chosen is None:
        placement = _cold.choose(model, trained, valid, filter_seen)
    else:
        base = _cold.choose(model, trained, None)  # this model's means, the chosen pair
        placement = replace(chosen, mean_bias=base.mean_bias,
                            text_bias_mean=base.text_bias_mean)
    _cold.place(model, torch.nonzero(~trained).flatten(), placement)
    if n:
        log.info("%d item(s) had no training events: placed from their text (scale %g, "
                 "bias shift %g)", n, placement.scale, placement.shift)
    return placement


class Recommender:
    """Next-item recommendations from a sequence model (``"auto"``, ``"lstm"``, ``"gru"``,
    ``"sasrec"``).

    ``model="auto"`` (the default) trains the strongest configuration measured, as far as
    the data supports it (``prismrec.recommender._defaults``): SASRec with tuned settings,
    item text when the catalogue has text, the EASE blend when the catalogue fits in memory
    (at most 10,000 items) and there are validation cases, no refit. It costs more than a
    bare model: a text-encoder pass over the catalogue, more epochs and the blend's EASE
    solves. ``choices_`` records, after ``fit``,
    what was chosen and why. A named model (``"lstm"``, ``"gru"``, ``"sasrec"``) trains as
    configured: its config defaults, text and blend only when asked.

    ``blend`` adds EASE item-item scores to the sequence model's (see
    ``prismrec.recommender._blend``): None (default) for the model's default (``"auto"``
    under ``model="auto"``, none for a named model); False for none; ``"auto"`` for on when
    the catalogue fits (as above); True or ``"ease"`` to choose the EASE ``lam``, the history
    recency ``decay`` and the blend weight on validation over ``BlendConfig()``'s grid; a
    dict or ``BlendConfig`` for another grid. The choice and its validation table are in
    ``blend_``; the fitted part is ``item_item_``.

    ``device`` (``"cpu"``, the default; ``"cuda"``; ``"auto"``: CUDA when there is a GPU)
    is where training, validation and the batch scoring of ``score`` and ``recommend`` run
    (``prismrec.train.device``); ``model_`` itself stays on the CPU between calls, and the
    blend, streaming, explanations and profiles run on the CPU. ``"cuda"`` where torch sees
    no CUDA GPU raises ``DeviceError`` (a ``ValueError``).
    """

    def __init__(self, model: str = "auto", *,
                 model_config: EncoderConfig | dict | None = None,
                 train_config: TrainConfig | dict | None = None,
                 log_dir: str | Path | None = None,
                 blend: bool | str | dict | BlendConfig | None = None,
                 device: str = "cpu") -> None:
        self.model = model
        self.model_config = model_config
        self.train_config = train_config
        self.log_dir = log_dir
        self.blend = blend
        self.device = device

    def get_params(self) -> dict[str, Any]:
        return {"model": self.model, "model_config": self.model_config,
                "train_config": self.train_config, "log_dir": self.log_dir,
                "blend": self.blend, "device": self.device}

    @property
    def blend_option_(self):
        """The blend option in use: resolved from ``blend`` at fit (``choices_``), else
        ``blend`` as given (a loaded model)."""
        choices = getattr(self, "choices_", None)
        return self.blend if choices is None else choices.blend_option

    @property
    def device_(self) -> torch.device:
        """``device`` resolved (``"auto"`` → ``cuda`` or ``cpu``); raises ``DeviceError``
        for a device this machine lacks."""
        return resolve_device(self.device)

    def __repr__(self) -> str:
        if self.blend is None or self.blend is False:
            return f"Recommender(model={self.model!r})"
        return f"Recommender(model={self.model!r}, blend={self.blend!r})"

    # -- histories (the stream appends to them) -------------------------------------------------
    @property
    def histories_(self) -> Sequences:
        """Every user's full known history (item indices, oldest first): all events of the
        data given to ``fit``/``fit_split`` plus streamed ones. What the model trained on is
        recorded separately in ``training_`` (per-user cuts into these histories)."""
        if self._hist_rows:  # fold streamed rows into one CSR (only when someone reads it)
            self._hist_base = self._merged_histories()
            self._hist_rows = {}
        return self._hist_base

    @histories_.setter
    def histories_(self, value: Sequences) -> None:
        self._hist_base = value
        self._hist_rows: dict[int, tuple[list[int], list[float]]] = {}
        self._states: dict[str, UserState] = {}  # carried by the streaming engine
        self._event_ids: set[tuple[str, str]] = set()  # (user, event_id): ids are per user
        self._own_users = False  # users_ may be shared (LiveProfiles): copy before growing
        self._served: Served | None = None  # the engine's view of the model, on first update

    def _merged_histories(self) -> Sequences:
        base, over = self._hist_base, self._hist_rows
        n_users = len(self.users_)
        rows = np.repeat(np.arange(len(base), dtype=np.int64), base.lengths)
        keep = ~np.isin(rows, np.fromiter(over, dtype=np.int64, count=len(over)))
        parts_r, parts_i, parts_t = [rows[keep]], [base.items[keep]], [base.times[keep]]
        for r, (items, times) in over.items():
            parts_r.append(np.full(len(items), r, dtype=np.int64))
            parts_i.append(np.asarray(items, dtype=np.int64))
            parts_t.append(np.asarray(times, dtype=np.float64))
        return Sequences.from_arrays(np.concatenate(parts_r), np.concatenate(parts_i),
                                     np.concatenate(parts_t), n_users)

    def _row(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """User row ``r``'s items and times, streamed events included."""
        over = self._hist_rows.get(r)
        if over is not None:
            return np.asarray(over[0], dtype=np.int64), np.asarray(over[1], dtype=np.float64)
        if r < len(self._hist_base):
            return self._hist_base.row(r), self._hist_base.row_times(r)
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)

    def _take(self, rows: np.ndarray) -> Sequences:
        if not self._hist_rows and (len(rows) == 0 or rows.max() < len(self._hist_base)):
            return self._hist_base.take(rows)
        pairs = [self._row(int(r)) for r in rows]
        return Sequences.from_lists([p[0] for p in pairs], [p[1] for p in pairs])

    # -- fitting --------------------------------------------------------------------------
    def _train_config(self) -> TrainConfig:
        choices = getattr(self, "choices_", None)
        c = self.train_config if choices is None else choices.train_config
        c = TrainConfig() if c is None else TrainConfig.from_dict(c) if isinstance(c, dict) else c
        c.validate()
        return c

    def _config_dict(self) -> dict:
        choices = getattr(self, "choices_", None)
        if choices is not None:
            return dict(choices.model_config)
        cfg = self.model_config
        if isinstance(cfg, EncoderConfig):
            cfg = cfg.to_dict()
        return dict(cfg or {})

    def _build(self, n_items: int, seed: int, text_vectors: np.ndarray | None,
               embedding: str | None = None,
               route_vectors: np.ndarray | None = None) -> SequenceEncoder:
        name = self.choices_.model
        cfg = self._config_dict()
        if embedding is not None:
            cfg["embedding"] = embedding
        mode = cfg.get("embedding", "id")
        if (mode == "id") != (text_vectors is None):
            raise ValueError(
                f"model_config embedding={mode!r} and text_vectors disagree: text modes "
                "('text', 'id+text') need text_vectors (one row per item, in item "
                "vocabulary order, e.g. from prismrec.text.encode_catalog) or a catalog with "
                "item text, which fit encodes; 'id' takes none"
            )
        tv = None
        if text_vectors is not None:
            tv = torch.as_tensor(np.asarray(text_vectors, dtype=np.float32))
            if tv.ndim != 2 or tv.shape[0] != n_items:
                raise DataError(f"text_vectors must have shape ({n_items}, D), one row per "
                                f"item; got {tuple(tv.shape)}")
        rv = None if route_vectors is None else torch.from_numpy(route_vectors)
        torch.manual_seed(seed)
        return MODELS[name](n_items, cfg or None, text_vectors=tv, route_vectors=rv)

    def _route_vectors(self, items: Vocab, catalog: Catalog | None) -> np.ndarray | None:
        """The catalogue routing vectors (``_routing``) for ``interest_route="categories"``
        (refused before training when there are none), and for ``"auto"`` (the default)
        when the decay head is on and the catalogue gives some item a category; else None
        (item routing; the model records it in ``model_.config.interest_route``)."""
        cfg = self._config_dict()
        route = cfg.get("interest_route", EncoderConfig.interest_route)
        if route == "auto":
            head_on = (cfg.get("interests", EncoderConfig.interests) >= 2
                       and cfg.get("interest_head", EncoderConfig.interest_head) == "decay")
            if not head_on or not _routing.has_categories(catalog, items.to_list()):
                return None
        elif route != "categories":
            return None
        return _routing.category_vectors(catalog, items.to_list())


    def fit(self, data: Dataset | Interactions | pd.DataFrame, catalog: Catalog | None = None,
            *, valid: bool = True, text_vectors: np.ndarray | None = None,
            text: bool | str = "auto", encoder: TextEncoder | None = None,
            template: TextTemplate | None = None,
            text_cache: str | os.PathLike | None = None, refit: bool = False) -> Recommender:
        """Train on all events of ``data`` (see the module docstring); returns self.

        ``valid=False`` trains for ``train_config.epochs`` without holding anything out.
        ``refit=True``: once early stopping on the held-out last events has chosen the
        number of epochs (and the blend its weights), train a fresh model on every event,
        held-out ones included, for that many epochs. The model then learns from each
        user's latest event too; it costs a second training run. ``result_`` keeps the
        selection run (its validation metrics), ``refit_result_`` the final one.

        Item text (the catalogue is ``catalog``, or the Dataset's own):

        - ``text=True`` encodes each item's catalogue text with ``encoder`` (default
          ``prismrec.text.default_encoder()``) composed by ``template`` (default
          ``TextTemplate()``), optionally through the disk cache ``text_cache``, and trains
          ``embedding="id+text"`` (or the text mode ``model_config`` names). Items without
          a catalogue row or with empty text get a zero text vector (they learn from their
          id alone); ``text_missing_`` counts them (``no_catalogue_row``, ``empty_text``).
        - ``text="auto"`` (default): under ``model="auto"``, encodes when the catalogue has
          text for at least one item (and trains the ``id+text`` embedding); for a named
          model, only when ``model_config`` asks for a text embedding and no
          ``text_vectors`` are given. ``text=False`` never encodes. ``choices_`` records
          the decision and its reason.
        - ``text_vectors`` (one row per item of the item vocabulary) are used as given, for
          a text-mode ``model_config``; pass ``encoder``/``template`` too if you want
          ``add_items`` and ``search`` to know how they were made.

        In a text mode, items of the vocabulary with no training event (cold items) are
        placed from their text as items added later with ``add_items`` are: vector
        ``scale`` x their text projection, bias the trained items' mean + ``shift``, the
        pair chosen after training on the validation cases (``cold_placement_``, with its
        validation table; ``prismrec.recommender._cold``). Without validation cases it is
        scale 1, shift 0 (the text projection at the mean bias).

        With ``blend``, the item-item part is fitted on the same training rows as the
        sequence model and the blend is chosen on the held-out last events.
        """
        if isinstance(data, pd.DataFrame):
            data = Interactions.from_frame(data)
        if isinstance(data, Interactions):
            data = Dataset.from_interactions("data", data, catalog)
        if not isinstance(data, Dataset):
            raise TypeError("fit takes a Dataset, an Interactions table or a DataFrame")
        catalog = data.catalog if catalog is None else catalog
        if refit and not valid:
            raise ValueError("refit=True retrains for the epochs chosen on validation: it "
                             "needs valid=True")
        seqs = data.sequences
        split_name = "holdout_last"
        if valid:
            train, cases = holdout_last(seqs)
            if len(cases) == 0:
                train, cases, split_name = seqs, None, "all"
        else:
            train, cases, split_name = seqs, None, "all"
        vectors, mode = self._choose(data.items, catalog, text_vectors, text, encoder,
                                     template, text_cache, refit, cases is not None)
        self._fit(train, cases, data.users, data.items, seqs, vectors, mode,
                  refit_on=seqs if refit else None, split_name=split_name,
                  route_vectors=self._route_vectors(data.items, catalog))
        self.catalog_ = catalog
        return self

    def fit_split(self, split: Split, users: Vocab, items: Vocab,
                  catalog: Catalog | None = None, *,
                  text_vectors: np.ndarray | None = None, text: bool | str = "auto",
                  encoder: TextEncoder | None = None, template: TextTemplate | None = None,
                  text_cache: str | os.PathLike | None = None,
                  refit: bool = False, histories: Sequences | None = None) -> Recommender:
        """Train on ``split.train``, stop early on ``split.valid``; returns self.

        ``histories`` are every user's full known histories (one row per user index, e.g.
        ``Dataset.sequences``): ``histories_`` keeps them, so recommendations, seen-item
        filtering and profiles start from each user's latest event, not from where training
        stopped. Default: the longest history the split knows per user (test case history
        and targets, else validation, else training row). ``training_`` records the split
        and, per user, where training and selection stopped (see ``_provenance``).

        The text arguments work as in ``fit``. With ``blend``, the item-item part is fitted
        on ``split.train`` and the blend is chosen on ``split.valid``. ``refit=True`` then
        retrains on ``split.train_and_valid()`` with the chosen epochs and blend (see
        ``fit``); the test cases are never seen.
        """
        valid = split.valid if len(split.valid) else None
        vectors, mode = self._choose(items, catalog, text_vectors, text, encoder, template,
                                     text_cache, refit, valid is not None)
        if refit and valid is None:
            raise ValueError(f"refit=True needs validation cases to choose the epochs; split "
                             f"{split.name!r} has none")
        full = split.train_and_valid() if refit else None
        known = _provenance.known_histories(split) if histories is None else histories
        self._fit(split.train, valid, users, items, known, vectors, mode, refit_on=full,
                  split_name=split.name, route_vectors=self._route_vectors(items, catalog))
        self.catalog_ = catalog
        return self


    def _choose(self, items: Vocab, catalog: Catalog | None,
                text_vectors: np.ndarray | None, text: bool | str, encoder, template,
                text_cache, refit: bool, validated: bool
                ) -> tuple[np.ndarray | None, str | None]:
        """Set ``choices_`` (model, settings, text, blend, refit and why), then the text."""
        if self.model != _defaults.AUTO and self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose 'auto' or one of "
                             f"{sorted(MODELS)}")
        self.choices_: Choices | None = None
        choices = _defaults.choose(self, items, catalog, text=text, text_vectors=text_vectors,
                                   refit=refit, validated=validated)
        if choices.auto and text_vectors is None:
            text = choices.text
        self.choices_ = choices
        return _text.text_inputs(self, items, catalog, text_vectors, text, encoder, template,
                                 text_cache)

    def _fit(self, train: Sequences, valid: EvalCases | None, users: Vocab, items: Vocab,
             histories: Sequences, text_vectors: np.ndarray | None = None,
             embedding: str | None = None, refit_on: Sequences | None = None,
             split_name: str = "custom", route_vectors: np.ndarray | None = None) -> None:
        if len(items) == 0 or train.n_events == 0:
            raise DataError("no events to train on")
        if len(histories) != len(users):
            raise DataError(f"{len(histories)} histories for {len(users)} users")
        if _blend.resolve(self.choices_.blend_option) is not None:  # refuse before training
            check_size(len(items))
            check_memory(blend_bytes(len(items), text=text_vectors is not None),
                         f"the EASE blend on {len(items):,} items"
                         + (" with item text" if text_vectors is not None else ""))
        tc = self._train_config()
        device = self.device_  # refuse a missing GPU before building anything
        self.model_ = self._build(len(items), tc.seed, text_vectors, embedding, route_vectors)
        self.result_: TrainResult = Trainer(tc, log_dir=self.log_dir, device=device).fit(
            self.model_, train, valid)
        self.cold_placement_ = _place_untrained(self.model_, train, valid,
                                                tc.valid_filter_seen)
        self.users_, self.items_, self.histories_ = users, items, histories
        self.train_config_ = tc
        threads = torch.get_num_threads()
        if tc.threads is not None:
            torch.set_num_threads(tc.threads)
        try:
            _blend.fit_blend(self, train, valid)
        finally:
            torch.set_num_threads(threads)
        self.refit_result_: TrainResult | None = None
        if refit_on is not None and valid is not None:
            self._refit(refit_on, tc, text_vectors, embedding, route_vectors)
        self.training_ = _provenance.record(split_name, histories, train, valid,
                                            refit=self.refit_result_ is not None)

    def _refit(self, full: Sequences, tc: TrainConfig, text_vectors: np.ndarray | None,
               embedding: str | None, route_vectors: np.ndarray | None = None) -> None:
        """A fresh model on ``full`` for the selected number of epochs; the blend keeps the
        weights validation chose, its item-item part is refitted on ``full`` too."""
        epochs = max(1, self.result_.best_epoch)
        self.model_ = self._build(len(self.items_), tc.seed, text_vectors, embedding,
                                  route_vectors)
        self.refit_result_ = Trainer(replace(tc, epochs=epochs), log_dir=self.log_dir,
                                     device=self.device_).fit(self.model_, full, None)
        self.cold_placement_ = _place_untrained(self.model_, full, None, tc.valid_filter_seen,
                                                chosen=self.cold_placement_)
        if self.item_item_ is not None:
            _blend.refit_item_item(self, full)

    # -- scoring and recommending -------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise ValueError("this Recommender is not fitted: call fit() or Recommender.load()")

    def score(self, users: np.ndarray, histories: Sequences) -> np.ndarray:
        """The evaluation Scorer protocol: (B, N) float32 scores, each history from scratch."""
        self._check_fitted()
        if len(users) != len(histories):
            raise ValueError(f"{len(users)} users but {len(histories)} histories")
        if histories.n_events and (histories.items.min() < 0
                                   or histories.items.max() >= len(self.items_)):
            raise DataError(f"history items must be indices in [0, {len(self.items_)})")
        scores = score_sequences(self.model_, histories, device=self.device_)  # (B, N)
        return _blend.blended(self, scores, histories).numpy()

    def _top(self, scores: torch.Tensor, seen: Sequences | None, k: int) -> tuple:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if seen is not None and seen.n_events:
            scores[torch.from_numpy(seen.row_ids()), torch.from_numpy(seen.items)] = -torch.inf
        values, indices = topk(scores, min(k, scores.shape[1]))
        return values.numpy(), indices.numpy()

    def _frame(self, user_ids: list[str] | None, values: np.ndarray,
               indices: np.ndarray) -> pd.DataFrame:
        keep = np.isfinite(values)  # filtered items are not recommendations
        rows, cols = np.nonzero(keep)
        out = {"rank": cols + 1, "item": self.items_.ids(indices[rows, cols]),
               "score": values[rows, cols].astype(np.float64)}
        if user_ids is not None:
            out = {"user": [user_ids[r] for r in rows], **out}
        return pd.DataFrame(out)

    def recommend(self, users, k: int = 10, filter_seen: bool = True, *,
                  diversity: float | None = None, exclude=None, explain: bool = False,
                  mute=None, boost=None) -> pd.DataFrame:
        """Top-``k`` items for one user id or a list of them.

        Columns user, rank (1 = best), item, score; ids are strings. Items a user already
        had are left out with ``filter_seen``; ``exclude`` (item ids) are never recommended
        (an id the model does not know raises ``UnknownIdError``). An unknown user raises
        ``UnknownIdError``. Users updated by ``update`` are scored from their carried state.

        ``explain=True`` adds columns title (None where the catalogue has none), interest
        (the interest id, ``Interest.component`` of ``profile(user)``), interest_label and
        reason: the reason names, by title, the history items contributing most to the
        item's score (``prismrec.explain.attribution``; it costs one scoring pass over U + 1
        histories per user, U = distinct history items), and the interest is the one the
        most contributing item belongs to.

        ``diversity`` λ in [0, 1] composes each user's list from their interests, as
        ``recommend_composed`` does: 0 ranks by ``max_k w_k s_k(item)`` (the interest an item
        serves best), 1 fills the list in proportion to the interest weights; the frame is
        explained as above and ``score`` is that relevance. ``mute`` / ``boost`` (interest
        ids) steer the composition (``recommend_composed``) and imply it, at
        ``DEFAULT_DIVERSITY`` unless ``diversity`` is given. The composed path reads the
        model only, so a blend's item-item part is not applied. A model without an interest
        head composes from k-means clusters of each history (``frame.attrs["fallback"]``
        says so; ``frame.attrs["components"]`` names the source either way).
        """
        self._check_fitted()
        ids = [users] if isinstance(users, (str, bytes, int, np.integer)) else list(users)
        rows = np.empty(len(ids), dtype=np.int64)
        for i, u in enumerate(ids):
            try:
                rows[i] = self.users_.index_of(u)
            except UnknownIdError:
                raise UnknownIdError(
                    f"unknown user {Vocab._key(u)!r}: not in the training data or the stream; "
                    "use recommend_for_sequence() with their items, or update() with events"
                ) from None
        user_ids = self.users_.ids(rows)
        excluded = None if exclude is None else list(exclude)
        if diversity is None and (mute or boost):
            diversity = DEFAULT_DIVERSITY
        if diversity is not None:
            return self._recommend_composed_many(user_ids, k, float(diversity), excluded,
                                                 filter_seen, mute, boost)
        hist = self._take(rows)
        if not any(u in self._states for u in user_ids):
            scores = score_sequences(self.model_, hist, device=self.device_)
        else:
            scores = self._score_with_states(user_ids, hist)
        scores = _blend.blended(self, scores, hist)
        if excluded:
            mask = exclusion_mask(scores.shape[1], exclude_ids=excluded, item_vocab=self.items_)
            scores[:, torch.from_numpy(mask)] = -torch.inf
        values, indices = self._top(scores, hist if filter_seen else None, k)
        if not explain:
            return self._frame(user_ids, values, indices)
        from prismrec.explain.interests import COLUMNS, explain_ranked

        frames = []
        for r, u in enumerate(user_ids):
            ok = np.isfinite(values[r])
            frames.append(explain_ranked(self, u, indices[r][ok], values[r][ok]).assign(user=u))
        return self._explained(frames, COLUMNS)

    def _explained(self, frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
        from prismrec.profile.profile import FALLBACKS

        out = (pd.concat(frames, ignore_index=True)[["user", *columns]] if frames
               else pd.DataFrame(columns=["user", *columns]))
        source = "kmeans" if self.model_.head is None else self.model_.config.interest_head
        out.attrs = {"components": source, "fallback": FALLBACKS.get(source)}
        return out

    def _recommend_composed_many(self, user_ids: list[str], k: int, diversity: float,
                                 exclude: list | None, filter_seen: bool, mute=None,
                                 boost=None) -> pd.DataFrame:
        from prismrec.explain.interests import COLUMNS, compose_for

        if not 0.0 <= diversity <= 1.0:
            raise ValueError(f"diversity must be in [0, 1], got {diversity!r}")
        frames = [compose_for(self, u, k, diversity=diversity, exclude_ids=exclude,
                              filter_seen=filter_seen, mute=mute, boost=boost).assign(user=u)
                  for u in user_ids]
        return self._explained(frames, COLUMNS)

    @torch.no_grad()
    def _score_with_states(self, user_ids: list[str], hist: Sequences) -> torch.Tensor:
        missing = np.array([u not in self._states for u in user_ids])
        reprs = torch.zeros(len(user_ids), self.model_.dim)
        if missing.any():
            reprs[torch.from_numpy(missing)] = encode_sequences(
                self.model_, hist.take(np.flatnonzero(missing)))
        for i, u in enumerate(user_ids):
            if not missing[i]:
                reprs[i] = torch.from_numpy(self._states[u].hidden)
        was_training = self.model_.training
        self.model_.eval()
        try:
            return self.model_.score_all(reprs)  # (B, N)
        finally:
            self.model_.train(was_training)

    def recommend_for_sequence(self, items: list, k: int = 10, filter_seen: bool = True,
                               times: list[float] | None = None, *,
                               explain: bool = False) -> pd.DataFrame:
        """Top-``k`` for an arbitrary history (item ids, oldest first): rank, item, score.

        ``explain=True`` adds title, interest, interest_label and reason as ``recommend``
        does, the interests read from this history.
        """
        self._check_fitted()
        idx = []
        for it in items:
            try:
                idx.append(self.items_.index_of(it))
            except UnknownIdError:
                raise UnknownIdError(
                    f"unknown item {Vocab._key(it)!r}: the model was not trained with it"
                ) from None
        if times is not None and len(times) != len(idx):
            raise ValueError(f"{len(idx)} items but {len(times)} times")
        hist = Sequences.from_lists([idx], None if times is None else [times])
        scores = score_sequences(self.model_, hist, device=self.device_)  # (1, N)
        scores = _blend.blended(self, scores, hist)
        values, indices = self._top(scores, hist if filter_seen else None, k)
        if not explain:
            return self._frame(None, values, indices)
        from prismrec.explain.interests import COLUMNS, explain_ranked_history

        ok = np.isfinite(values[0])
        frame = explain_ranked_history(self, hist.row(0), hist.row_times(0),
                                       indices[0][ok], values[0][ok])
        return self._explained([frame.assign(user=None)], COLUMNS).drop(columns="user")

    def blend_scores(self, scores: torch.Tensor, histories: Sequences) -> torch.Tensor:
        """The sequence model's (B, N) ``scores`` as this recommender serves them.

        With a blend, ``(1 - a) * z(scores) + a * z(item-item scores of histories)``, row b
        of ``histories`` being the history behind ``scores[b]``; otherwise ``scores``
        unchanged. Every scoring path goes through this (``score``, ``recommend``,
        ``recommend_for_sequence``, streamed states, ``LiveProfiles``).
        """
        self._check_fitted()
        return _blend.blended(self, scores, histories)

    # -- items: text, similarity, search, new items ---------------------------------------------
    @property
    def text_vectors_(self) -> np.ndarray | None:
        """The frozen item text vectors (N, Dt) the model uses, item order; None for 'id'."""
        return _text.text_vectors(self)

    def similar_items(self, item, k: int = 10, *, by: str = "model") -> pd.DataFrame:
        """The ``k`` items nearest to ``item`` by cosine: columns rank, item, score.

        ``by="model"`` (default) compares the model's output item vectors (what the model
        learned from behaviour, plus text for text modes); ``by="text"`` compares the frozen
        text vectors (needs a text part). The item itself is left out; ties go to the lower
        item index. An unknown item raises ``UnknownIdError``.
        """
        return _text.similar_items(self, item, k, by)

    def search(self, text: str, k: int = 10, *, encoder: TextEncoder | None = None
               ) -> pd.DataFrame:
        """Items whose text is nearest to a free-text query (cosine): rank, item, score.

        The query is encoded with the model's text encoder (see ``add_items`` for how it is
        found) and compared with every item's text vector. Needs a model with a text part.
        """
        return _text.search(self, text, k, encoder)

    def add_items(self, rows: pd.DataFrame | Catalog, encoder: TextEncoder | None = None
                  ) -> list[str]:
        """Make items recommendable from their text alone, without retraining.

        ``rows`` is a ``Catalog`` or a DataFrame with an ``item`` column and text columns
        (title, description, categories, brand, tags; other columns are kept in
        ``catalog_``). Each item's text is composed with the template used at fit and
        encoded with ``encoder`` — default: the encoder from fit, or one rebuilt from its
        saved name (the packaged MiniLM, or a ``HashingEncoder``); otherwise pass it.

        New ids get the next item indices: their vector is the model's text projection of
        their text times ``cold_placement_.scale`` and their bias the trained items' mean
        plus ``cold_placement_.shift`` (chosen on validation at fit; see ``fit`` and
        ``prismrec.recommender._cold``), so users can be recommended them at once; a
        checkpoint saved before the placement was kept gives them the text projection and
        the mean bias of all items. Ids
        the model already has are upserts: their text is replaced and re-encoded (the
        learned ID part is kept; unchanged text gives the same vector). Returns the new ids,
        in order. With a blend, new items get zero item-item rows and columns: they are
        recommended through the sequence model's text path only. Errors:
        ``NoTextPathError`` for an ``embedding='id'`` model; ``DataError`` for missing or
        empty text (naming the items); ``DimensionMismatchError`` when the encoder's width
        is not the model's text width; ``ValueError`` when a blended model would pass
        ``MAX_ITEMS`` items.
        """
        return _text.add_items(self, rows, encoder)

    # -- streaming --------------------------------------------------------------------------------
    def update(self, events: pd.DataFrame | Iterable[Mapping]) -> StreamUpdate:
        """Append ``events`` to the users' histories and advance their states; in memory.

        ``events`` has columns user, item, timestamp (unix seconds or date-times) and may
        have ``event_id``; or it is a list of records (dicts) with those keys, the cheaper
        input for one event at a time. Events are parsed and folded by the one streaming
        engine the live service (``prismrec.profile.live``) uses too, with its rules:

        - an ``event_id`` the same user sent before (this batch or an earlier one) is a
          duplicate: ignored. Ids are per user, as in the profile stores: another user's
          event with the same id is applied;
        - an event whose item the model does not know is reported (``unknown_items``) and
          not stored; new users are added to ``users_`` with their first stored event;
        - a user's new events are taken in time order (ties: arrival order); each advances
          a carried recurrent state by one step: O(1) in the history length (the first
          update of a user runs their history once to build the state); SASRec recomputes
          over its last ``max_len`` events;
        - if a new event is older than the user's latest, it is stored at its place in time
          and that user's state is recomputed from their whole history (``recomputed``).

        The next ``recommend`` uses the new states: streaming a history event by event
        scores like recommending from the whole history in one batch, and like the live
        service given the same events. With a blend, the item-item part reads the user's
        history bag at ``recommend`` (O(history) for the bag only). Event ids are kept in
        memory only (``save`` keeps the histories, not the ids).
        """
        return _stream.update(self, events)

    def forget(self, user) -> bool:
        """Remove ``user``: their history, carried state and event ids; False if unknown.

        The user's id leaves ``users_`` (other users keep their order), so ``recommend``
        raises ``UnknownIdError`` for them until new events arrive. What the model's weights
        learned from the user stays until retraining.
        """
        return _stream.forget(self, user)

    def live_bundle(self) -> LiveBundle:
        """What the live service needs from this recommender (``prismrec.profile.live``):
        the model, vocabularies, every user's full known history, the blend's item-item part
        and weight, the catalogue; ``grow`` adds items to a copy (this object is unchanged).
        """
        self._check_fitted()
        return _text.live_bundle(self)

    # -- interests ------------------------------------------------------------------------------
    def profile(self, user, **kwargs):
        """The user's named interests as a ``Profile`` (see ``prismrec.explain.interests``).

        ``print(profile)`` is a short summary; ``profile.to_dict()`` the profile document.
        Keywords go to ``profile_for``: ``labeler=ChatLabeler(client)`` names the interests
        with a chat model (the catalogue label is the default), ``n_items``, ``min_share``.
        An interest of fewer than ``profile.profile.STRAY_EVENTS`` (3) events is marked
        ``stray`` (``Interest.stray``): one or two events joined to no interest.
        ``profile.routing`` says how the decay head joined events to interests: "categories"
        (the default when the catalogue given to fit has categories) or "item".
        """
        from prismrec.explain.interests import profile_for

        return profile_for(self, user, **kwargs)

    def recommend_composed(self, user, k: int = 10, *,
                           diversity: float = DEFAULT_DIVERSITY, mute=None, boost=None,
                           exclude_ids=None, exclude_categories=None,
                           filter_seen: bool = True) -> pd.DataFrame:
        """Top-``k`` composed from the user's interests, each with its interest and reason.

        ``mute``: interest ids (``profile(user)``'s ``Interest.component``) whose items are
        all removed; ``boost``: interest ids whose weight is doubled (and raised to at least
        0.2 before renormalising), raising their share of the list. See
        ``prismrec.explain.interests.compose_for`` for the columns and ``DEFAULT_DIVERSITY``
        for how the default λ was chosen.
        """
        from prismrec.explain.interests import COLUMNS, compose_for

        frame = compose_for(self, user, k, diversity=diversity, mute=mute, boost=boost,
                            exclude_ids=exclude_ids, exclude_categories=exclude_categories,
                            filter_seen=filter_seen)
        return self._explained([frame.assign(user=str(user))], COLUMNS).drop(columns="user")

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write a checkpoint folder (safetensors + JSON) that ``load`` reads back.

        Every user's full known history (streamed events included) and the training
        record's per-user cuts go in the safetensors file (its split name and data hash in
        ``checkpoint.json``); the item text
        vectors are part of the model's weights there; the catalogue, if any, goes to
        ``catalog.json`` (JSON rows, checksummed in ``checkpoint.json``); the encoder name
        and text template go in ``checkpoint.json``, and so does the cold-item placement
        (``cold_placement_``). A blended model adds its item-item
        weights to the safetensors file and its ``blend_`` record to ``checkpoint.json``.
        """
        return _persist.save(self, path)

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> Recommender:
        """A fitted Recommender from ``save``'s folder; needs no training data.

        The weights load onto the CPU whatever device wrote them; ``device`` is where
        scoring runs afterwards (as in ``Recommender(device=...)``).

        Checkpoints written before catalogues and text were saved load with
        ``catalog_``, ``text_encoder_`` and ``text_template_`` set to None; those written
        without a blend load with ``item_item_`` and ``blend_`` set to None; those written
        before the training record was kept load with ``training_`` None (``evaluate
        --checkpoint`` then refuses them: it cannot tell which cases the model saw); those
        written before the cold-item placement was kept load with ``cold_placement_`` None
        (``add_items`` then gives new items a zero ID row and the mean bias, as it did then);
        those written before the fit's choices were kept load with ``choices_`` None.
        """
        resolve_device(device)  # refuse a missing GPU before reading anything
        rec = _persist.load(cls, path)
        rec.device = device
        return rec

