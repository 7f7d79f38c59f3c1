"""``Recommender``: the user-facing object — ids in, DataFrames out, one sequence model inside.

Two ways to fit, for two purposes:

- ``fit(data)`` trains for use. ``data`` is a ``Dataset``, an ``Interactions`` table or a
  DataFrame with user/item/timestamp columns. Every event is history; to choose the epoch,
  each user's last event is held out as the validation target (users with at least 3
  events), and it is still part of the history the recommendations start from.
- ``fit_split(split, users, items)`` trains on ``split.train`` and stops early on
  ``split.valid``: the benchmark path, where ``split.test`` is scored later with ``score``.

Item text. With a catalogue, ``fit(data, catalog, text=True)`` encodes every item's text
(``prismrec.text.encode_catalog``, default encoder all-MiniLM-L6-v2) and trains the
``"id+text"`` item embedding; ``text_vectors=`` passes vectors computed elsewhere. A model
with a text part can then take new items from their text alone (``add_items``), find items
near a query (``search``), and the catalogue, encoder name and template are saved with it.

Streaming. ``update(events)`` appends new events to the users' histories in memory and
advances their model state by the new events only; ``forget(user)`` drops a user. The
durable, store-backed version of this path for the service is ``prismrec.profile.live``.

Scikit-learn manners: ``__init__`` stores parameters only; learned state (``model_``,
``users_``, ``items_``, ``histories_``, ``result_``, ``catalog_``, ``text_encoder_``,
``text_template_``) exists after fitting or loading.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from prismrec.data.catalog import TEXT_FIELDS, Catalog
from prismrec.data.dataset import Dataset
from prismrec.data.interactions import Interactions, parse_timestamps
from prismrec.data.sequences import Sequences
from prismrec.data.split import EvalCases, Split
from prismrec.data.vocab import Vocab
from prismrec.errors import CheckpointError, DataError, PrismrecError, UnknownIdError
from prismrec.models import MODELS, EncoderConfig, SequenceEncoder
from prismrec.train.checkpoint import load_checkpoint, save_checkpoint
from prismrec.train.config import TrainConfig
from prismrec.train.inference import encode_sequences, score_sequences
from prismrec.train.trainer import Trainer, TrainResult

if TYPE_CHECKING:  # prismrec.text loads lazily: id-only users never pay for it
    from prismrec.text import TextEncoder, TextTemplate

log = logging.getLogger(__name__)

RECOMMENDER_FORMAT = 1
CATALOG_FILE = "catalog.json"
TEXT_MODES = ("text", "id+text")


class NoTextPathError(PrismrecError, ValueError):
    """The model has no text part (``embedding='id'``): it cannot place items from text."""


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


@dataclass(frozen=True)
class StreamUpdate:
    """What one ``Recommender.update`` did.

    ``accepted`` events were stored (their items are known); ``duplicates`` repeated an
    ``event_id`` seen before (ignored); ``late`` were older than their user's latest event
    (stored in time order; those users' states were recomputed, listed in ``recomputed``).
    ``unknown_items`` lists once each, in arrival order, the item ids the model does not
    know; ``unknown_events`` counts the events that carried them (not stored: add the items
    with ``add_items`` and send the events again).
    """

    accepted: int
    duplicates: int
    late: int
    unknown_events: int
    unknown_items: list[str] = field(default_factory=list)
    new_users: list[str] = field(default_factory=list)
    users_updated: list[str] = field(default_factory=list)
    recomputed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "duplicates": self.duplicates, "late": self.late,
                "unknown_events": self.unknown_events,
                "unknown_items": list(self.unknown_items), "new_users": list(self.new_users),
                "users_updated": list(self.users_updated),
                "recomputed": list(self.recomputed)}


@dataclass
class _UserState:
    """One user's model state after their whole current history (eval mode)."""

    hidden: torch.Tensor  # (D,) the user representation
    rnn: tuple[torch.Tensor, ...] | None  # the model's state parts without the batch dim
    # (GRU: (h,), LSTM: (h, c), each (L, D); more parts if the model adds any); None: windowed


class Recommender:
    """Next-item recommendations from a sequence model (``"lstm"``, ``"gru"``, ``"sasrec"``)."""

    def __init__(self, model: str = "lstm", *,
                 model_config: EncoderConfig | dict | None = None,
                 train_config: TrainConfig | dict | None = None,
                 log_dir: str | Path | None = None) -> None:
        self.model = model
        self.model_config = model_config
        self.train_config = train_config
        self.log_dir = log_dir

    def get_params(self) -> dict[str, Any]:
        return {"model": self.model, "model_config": self.model_config,
                "train_config": self.train_config, "log_dir": self.log_dir}

    def __repr__(self) -> str:
        return f"Recommender(model={self.model!r})"

    # -- histories (the stream appends to them) -------------------------------------------------
    @property
    def histories_(self) -> Sequences:
        """Every user's history (item indices, oldest first), streamed events included."""
        if self._hist_rows:  # fold streamed rows into one CSR (only when someone reads it)
            self._hist_base = self._merged_histories()
            self._hist_rows = {}
        return self._hist_base

    @histories_.setter
    def histories_(self, value: Sequences) -> None:
        self._hist_base = value
        self._hist_rows: dict[int, tuple[list[int], list[float]]] = {}
        self._states: dict[str, _UserState] = {}
        self._event_ids: dict[str, str] = {}  # event_id -> user, for dedup and forget
        self._own_users = False  # users_ may be shared (LiveProfiles): copy before growing

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
        c = self.train_config
        c = TrainConfig() if c is None else TrainConfig.from_dict(c) if isinstance(c, dict) else c
        c.validate()
        return c

    def _config_dict(self) -> dict:
        cfg = self.model_config
        if isinstance(cfg, EncoderConfig):
            cfg = cfg.to_dict()
        return dict(cfg or {})

    def _build(self, n_items: int, seed: int, text_vectors: np.ndarray | None,
               embedding: str | None = None) -> SequenceEncoder:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {sorted(MODELS)}")
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
        torch.manual_seed(seed)
        return MODELS[self.model](n_items, cfg or None, text_vectors=tv)

    def fit(self, data: Dataset | Interactions | pd.DataFrame, catalog: Catalog | None = None,
            *, valid: bool = True, text_vectors: np.ndarray | None = None,
            text: bool | str = "auto", encoder: TextEncoder | None = None,
            template: TextTemplate | None = None,
            text_cache: str | os.PathLike | None = None) -> Recommender:
        """Train on all events of ``data`` (see the module docstring); returns self.

        ``valid=False`` trains for ``train_config.epochs`` without holding anything out.

        Item text (the catalogue is ``catalog``, or the Dataset's own):

        - ``text=True`` encodes each item's catalogue text with ``encoder`` (default
          ``prismrec.text.default_encoder()``) composed by ``template`` (default
          ``TextTemplate()``), optionally through the disk cache ``text_cache``, and trains
          ``embedding="id+text"`` (or the text mode ``model_config`` names). Every item needs
          a catalogue row with text, or a ``DataError`` names those that lack it.
        - ``text="auto"`` (default) encodes only when ``model_config`` asks for a text
          embedding and no ``text_vectors`` are given; ``text=False`` never encodes.
        - ``text_vectors`` (one row per item of the item vocabulary) are used as given, for
          a text-mode ``model_config``; pass ``encoder``/``template`` too if you want
          ``add_items`` and ``search`` to know how they were made.
        """
        if isinstance(data, pd.DataFrame):
            data = Interactions.from_frame(data)
        if isinstance(data, Interactions):
            data = Dataset.from_interactions("data", data, catalog)
        if not isinstance(data, Dataset):
            raise TypeError("fit takes a Dataset, an Interactions table or a DataFrame")
        catalog = data.catalog if catalog is None else catalog
        vectors, mode = self._text_inputs(data.items, catalog, text_vectors, text, encoder,
                                          template, text_cache)
        seqs = data.sequences
        if valid:
            train, cases = holdout_last(seqs)
            if len(cases) == 0:
                train, cases = seqs, None
        else:
            train, cases = seqs, None
        self._fit(train, cases, data.users, data.items, seqs, vectors, mode)
        self.catalog_ = catalog
        return self

    def fit_split(self, split: Split, users: Vocab, items: Vocab,
                  catalog: Catalog | None = None, *,
                  text_vectors: np.ndarray | None = None, text: bool | str = "auto",
                  encoder: TextEncoder | None = None, template: TextTemplate | None = None,
                  text_cache: str | os.PathLike | None = None) -> Recommender:
        """Train on ``split.train``, stop early on ``split.valid``; returns self.

        The text arguments work as in ``fit``.
        """
        vectors, mode = self._text_inputs(items, catalog, text_vectors, text, encoder,
                                          template, text_cache)
        self._fit(split.train, split.valid if len(split.valid) else None, users, items,
                  split.train, vectors, mode)
        self.catalog_ = catalog
        return self

    def _text_inputs(self, items: Vocab, catalog: Catalog | None,
                     text_vectors: np.ndarray | None, text: bool | str,
                     encoder: TextEncoder | None, template: TextTemplate | None,
                     cache: str | os.PathLike | None) -> tuple[np.ndarray | None, str | None]:
        """(text vectors or None, embedding mode to force or None); records the encoder."""
        from prismrec.text import TextTemplate, default_encoder, encode_catalog

        if text not in (True, False, "auto"):
            raise ValueError(f"text must be True, False or 'auto', got {text!r}")
        mode = self._config_dict().get("embedding", "id")
        if text is True and text_vectors is not None:
            raise ValueError("give text_vectors or text=True (encode the catalogue), not both")
        encode = text is True or (text == "auto" and mode in TEXT_MODES
                                  and text_vectors is None and catalog is not None)
        self._encoder = encoder
        self.text_encoder_: dict[str, Any] | None = None
        self.text_template_: TextTemplate | None = template
        if encode:
            if catalog is None:
                raise DataError("text=True needs a catalogue with item text: pass catalog=")
            ids = items.to_list()
            missing = [i for i in ids if i not in catalog]
            if missing:
                shown = ", ".join(map(repr, missing[:5])) + (", ..." if len(missing) > 5 else "")
                raise DataError(f"{len(missing)} item(s) have no catalogue row: {shown}; add "
                                "them to the catalogue, or fit with text=False")
            enc = encoder if encoder is not None else default_encoder()
            template = template if template is not None else TextTemplate()
            text_vectors = encode_catalog(Catalog(catalog.frame.loc[ids]), enc, template,
                                          cache, progress=self._train_config().progress)
            self._encoder, self.text_template_ = enc, template
        if text_vectors is not None and self._encoder is not None:
            dim = int(np.asarray(text_vectors).shape[-1])
            if int(self._encoder.dim) != dim:
                raise ValueError(f"encoder {self._encoder.name!r} gives {self._encoder.dim}-d "
                                 f"vectors but text_vectors are {dim}-d")
            self.text_encoder_ = {"name": self._encoder.name, "dim": dim}
        force = None
        if encode and mode == "id":
            force = "id+text"
        return text_vectors, force

    def _fit(self, train: Sequences, valid: EvalCases | None, users: Vocab, items: Vocab,
             histories: Sequences, text_vectors: np.ndarray | None = None,
             embedding: str | None = None) -> None:
        if len(items) == 0 or train.n_events == 0:
            raise DataError("no events to train on")
        if len(histories) != len(users):
            raise DataError(f"{len(histories)} histories for {len(users)} users")
        tc = self._train_config()
        self.model_ = self._build(len(items), tc.seed, text_vectors, embedding)
        self.result_: TrainResult = Trainer(tc, log_dir=self.log_dir).fit(self.model_, train,
                                                                         valid)
        self.users_, self.items_, self.histories_ = users, items, histories
        self.train_config_ = tc

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
        return score_sequences(self.model_, histories).numpy()

    def _top(self, scores: torch.Tensor, seen: Sequences | None, k: int) -> tuple:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        if seen is not None and seen.n_events:
            scores[torch.from_numpy(seen.row_ids()), torch.from_numpy(seen.items)] = -torch.inf
        k = min(k, scores.shape[1])
        top = torch.topk(scores, k, dim=1, sorted=True)
        return top.values.numpy(), top.indices.numpy()

    def _frame(self, user_ids: list[str] | None, values: np.ndarray,
               indices: np.ndarray) -> pd.DataFrame:
        keep = np.isfinite(values)  # filtered items are not recommendations
        rows, cols = np.nonzero(keep)
        out = {"rank": cols + 1, "item": self.items_.ids(indices[rows, cols]),
               "score": values[rows, cols].astype(np.float64)}
        if user_ids is not None:
            out = {"user": [user_ids[r] for r in rows], **out}
        return pd.DataFrame(out)

    def recommend(self, users, k: int = 10, filter_seen: bool = True) -> pd.DataFrame:
        """Top-``k`` items for one user id or a list of them.

        Columns user, rank (1 = best), item, score; ids are strings. Items a user already
        had are left out with ``filter_seen``. An unknown user raises ``UnknownIdError``.
        Users updated by ``update`` are scored from their carried state (no history re-read).
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
        hist = self._take(rows)
        user_ids = self.users_.ids(rows)
        if not any(u in self._states for u in user_ids):
            scores = score_sequences(self.model_, hist)
        else:
            scores = self._score_with_states(user_ids, hist)
        values, indices = self._top(scores, hist if filter_seen else None, k)
        return self._frame(user_ids, values, indices)

    @torch.no_grad()
    def _score_with_states(self, user_ids: list[str], hist: Sequences) -> torch.Tensor:
        missing = np.array([u not in self._states for u in user_ids])
        reprs = torch.zeros(len(user_ids), self.model_.dim)
        if missing.any():
            reprs[torch.from_numpy(missing)] = encode_sequences(
                self.model_, hist.take(np.flatnonzero(missing)))
        for i, u in enumerate(user_ids):
            if not missing[i]:
                reprs[i] = self._states[u].hidden
        was_training = self.model_.training
        self.model_.eval()
        try:
            return self.model_.score_all(reprs)  # (B, N)
        finally:
            self.model_.train(was_training)

    def recommend_for_sequence(self, items: list, k: int = 10, filter_seen: bool = True,
                               times: list[float] | None = None) -> pd.DataFrame:
        """Top-``k`` for an arbitrary history (item ids, oldest first): rank, item, score."""
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
        scores = score_sequences(self.model_, hist)
        values, indices = self._top(scores, hist if filter_seen else None, k)
        return self._frame(None, values, indices)

    # -- items: text, similarity, search, new items ---------------------------------------------
    @property
    def text_vectors_(self) -> np.ndarray | None:
        """The frozen item text vectors (N, Dt) the model uses, item order; None for 'id'."""
        self._check_fitted()
        emb = self.model_.items
        if emb.proj is None:
            return None
        return emb.text_vectors[1:].detach().cpu().numpy().copy()

    def _item_index(self, item) -> int:
        try:
            return self.items_.index_of(item)
        except UnknownIdError:
            raise UnknownIdError(
                f"unknown item {Vocab._key(item)!r}: not in this model's catalogue; add it with "
                "add_items() (models with a text part) or retrain with it"
            ) from None

    def _need_text(self, what: str) -> None:
        self._check_fitted()
        if self.model_.items.proj is None:
            raise NoTextPathError(
                f"{what} needs item text vectors, but this {self.model_.name} model was "
                f"trained with embedding={self.model_.config.embedding!r} (no text part); "
                "retrain with fit(..., catalog, text=True) or "
                "model_config={'embedding': 'id+text'}"
            )

    def _resolve_encoder(self, encoder: TextEncoder | None) -> TextEncoder:
        """The given encoder, the one from fit, or one rebuilt from the saved encoder name."""
        from prismrec.text import EncoderError

        recorded = getattr(self, "text_encoder_", None)
        if encoder is None:
            encoder = getattr(self, "_encoder", None)
        if encoder is None and recorded is not None:
            encoder = _encoder_from_name(recorded["name"])
            self._encoder = encoder
        if encoder is None:
            known = "an unknown encoder" if recorded is None else repr(recorded["name"])
            raise EncoderError(
                f"this model's text vectors came from {known}, which prismrec cannot rebuild "
                "by name: pass encoder= (the same encoder that made the training vectors)")
        if recorded is not None and encoder.name != recorded["name"]:
            log.warning("encoder %r differs from %r, which made the training vectors; new "
                        "vectors may not match the model", encoder.name, recorded["name"])
        return encoder

    def _check_dim(self, encoder: TextEncoder) -> None:
        from prismrec.text import DimensionMismatchError

        want = self.model_.items.text_dim
        if int(encoder.dim) != want:
            raise DimensionMismatchError(
                f"encoder {encoder.name!r} gives {encoder.dim}-d vectors but this model's "
                f"text part takes {want}-d vectors: use the encoder the model was trained with"
            )

    def similar_items(self, item, k: int = 10, *, by: str = "model") -> pd.DataFrame:
        """The ``k`` items nearest to ``item`` by cosine: columns rank, item, score.

        ``by="model"`` (default) compares the model's output item vectors (what the model
        learned from behaviour, plus text for text modes); ``by="text"`` compares the frozen
        text vectors (needs a text part). The item itself is left out; ties go to the lower
        item index. An unknown item raises ``UnknownIdError``.
        """
        from prismrec.text import cosine_topk

        self._check_fitted()
        k = _check_k(k)
        if by == "model":
            with torch.no_grad():
                table = self.model_.output_table().detach().float().cpu().numpy()  # (N, D)
        elif by == "text":
            self._need_text("similar_items(by='text')")
            table = self.text_vectors_
        else:
            raise ValueError(f"by must be 'model' or 'text', got {by!r}")
        idx = self._item_index(item)
        found, scores = cosine_topk(table[idx: idx + 1], table, k + 1)
        keep = found[0] != idx
        found, scores = found[0][keep][:k], scores[0][keep][:k]
        return pd.DataFrame({"rank": np.arange(1, len(found) + 1), "item": self.items_.ids(found),
                             "score": scores.astype(np.float64)})

    def search(self, text: str, k: int = 10, *, encoder: TextEncoder | None = None
               ) -> pd.DataFrame:
        """Items whose text is nearest to a free-text query (cosine): rank, item, score.

        The query is encoded with the model's text encoder (see ``add_items`` for how it is
        found) and compared with every item's text vector. Needs a model with a text part.
        """
        from prismrec.text import cosine_topk

        self._need_text("search")
        k = _check_k(k)
        if not isinstance(text, str) or not text.strip():
            raise DataError("search needs a non-empty query text")
        enc = self._resolve_encoder(encoder)
        self._check_dim(enc)
        query = np.asarray(enc.encode([text]), dtype=np.float32)  # (1, Dt)
        found, scores = cosine_topk(query, self.text_vectors_, k)
        return pd.DataFrame({"rank": np.arange(1, found.shape[1] + 1),
                             "item": self.items_.ids(found[0]),
                             "score": scores[0].astype(np.float64)})

    def add_items(self, rows: pd.DataFrame | Catalog, encoder: TextEncoder | None = None
                  ) -> list[str]:
        """Make items recommendable from their text alone, without retraining.

        ``rows`` is a ``Catalog`` or a DataFrame with an ``item`` column and text columns
        (title, description, categories, brand, tags; other columns are kept in
        ``catalog_``). Each item's text is composed with the template used at fit and
        encoded with ``encoder`` — default: the encoder from fit, or one rebuilt from its
        saved name (the packaged MiniLM, or a ``HashingEncoder``); otherwise pass it.

        New ids get the next item indices: their vector is the model's text projection of
        their text (their ID row is zero), so users can be recommended them at once. Ids
        the model already has are upserts: their text is replaced and re-encoded (the
        learned ID part is kept; unchanged text gives the same vector). Returns the new ids,
        in order. Errors: ``NoTextPathError`` for an ``embedding='id'`` model; ``DataError``
        for missing or empty text (naming the items); ``DimensionMismatchError`` when the
        encoder's width is not the model's text width.
        """
        from prismrec.text import TextTemplate, encode_catalog

        self._need_text("add_items")
        cat = _as_catalog(rows)
        if len(cat) == 0:
            return []
        enc = self._resolve_encoder(encoder)
        self._check_dim(enc)
        template = self.text_template_ or TextTemplate()
        vectors = encode_catalog(cat, enc, template, progress=False)  # (M, Dt)
        if not np.isfinite(vectors).all():
            raise DataError("the encoder returned NaN or infinite vectors")
        ids = cat.ids
        known = [j for j, i in enumerate(ids) if i in self.items_]
        new = [j for j, i in enumerate(ids) if i not in self.items_]
        emb = self.model_.items
        if known:
            tv = emb.text_vectors[1:].clone()  # (N, Dt)
            at = torch.from_numpy(self.items_.index([ids[j] for j in known]))
            tv[at] = torch.from_numpy(vectors[known]).to(tv.dtype)
            emb.set_text_vectors(tv)
            self._states.clear()  # states over re-encoded items are stale
        if new:
            self.model_.add_items(torch.from_numpy(vectors[new]))
            self.items_.add([ids[j] for j in new])
        self.catalog_ = _merge_catalogs(self.catalog_, cat)
        return [ids[j] for j in new]

    # -- streaming --------------------------------------------------------------------------------
    def update(self, events: pd.DataFrame) -> StreamUpdate:
        """Append ``events`` to the users' histories and advance their states; in memory.

        ``events`` has columns user, item, timestamp (unix seconds or date-times) and may
        have ``event_id``. Rules:

        - an ``event_id`` seen before (this batch or an earlier one) is a duplicate: ignored;
        - an event whose item the model does not know is reported (``unknown_items``) and
          not stored; new users are added to ``users_`` with their first stored event;
        - a user's events are taken in time order (ties: arrival order). Each new event
          advances a carried recurrent state by one step: O(1) in the history length (the
          first update of a user runs their history once to build the state); SASRec
          recomputes over its last ``max_len`` events;
        - an event older than the user's latest is late: it is stored at its place in time
          and that user's state is recomputed from their whole history.

        The next ``recommend`` uses the new states: streaming a history event by event
        scores like recommending from the whole history in one batch. Event ids are kept
        in memory only (``save`` keeps the histories, not the ids).
        """
        self._check_fitted()
        users, items, times, ids = _event_columns(events)
        known = {}
        unknown: dict[str, None] = {}
        n_unknown = duplicates = 0
        batch_ids: dict[str, str] = {}
        per_user: dict[str, list[tuple[float, int]]] = {}
        for j in range(len(users)):
            eid = ids[j]
            if eid is not None and (eid in self._event_ids or eid in batch_ids):
                duplicates += 1
                continue
            idx = known.get(items[j])
            if idx is None:
                if items[j] not in self.items_:  # not stored, so its id is not kept either
                    unknown.setdefault(items[j])
                    n_unknown += 1
                    continue
                idx = known[items[j]] = self.items_.index_of(items[j])
            if eid is not None:
                batch_ids[eid] = users[j]
            per_user.setdefault(users[j], []).append((times[j], idx))
        self._event_ids.update(batch_ids)
        new_users = [u for u in per_user if u not in self.users_]
        if new_users:
            if not self._own_users:
                self.users_ = Vocab.from_list(self.users_.to_list())
                self._own_users = True
            self.users_.add(new_users)
        late = 0
        step, rebuild, recomputed = {}, [], []
        for user, evs in per_user.items():
            evs.sort(key=lambda e: e[0])  # stable: ties keep arrival order
            r = self.users_.index_of(user)
            row = self._hist_rows.get(r)
            if row is None:
                it, ts = self._row(r)
                row = self._hist_rows[r] = (it.tolist(), ts.tolist())
            n_late = sum(1 for t, _ in evs if row[1] and t < row[1][-1])
            late += n_late
            if n_late:
                recomputed.append(user)
            for t, idx in evs:
                pos = bisect_right(row[1], t)
                row[0].insert(pos, idx)
                row[1].insert(pos, t)
            if n_late or user not in self._states or not self.model_.recurrent:
                rebuild.append(user)
            else:
                step[user] = evs
        self._advance(step, rebuild)
        accepted = sum(len(v) for v in per_user.values())
        return StreamUpdate(accepted, duplicates, late, n_unknown, list(unknown), new_users,
                            list(per_user), recomputed)

    @torch.no_grad()
    def _advance(self, step: dict[str, list[tuple[float, int]]], rebuild: list[str]) -> None:
        """Carried states: one recurrent step per new event, or a run over the history."""
        model = self.model_
        was_training = model.training
        model.eval()
        try:
            if rebuild:
                self._rebuild_states(rebuild)
            if step:
                self._step_states(step)
        finally:
            model.train(was_training)

    def _rebuild_states(self, users: list[str]) -> None:
        model = self.model_
        rows = [self._row(self.users_.index_of(u)) for u in users]
        if not model.recurrent:  # windowed: the last max_len events (+1 for the first gap)
            w = int(model.max_len) + 1
            win = Sequences.from_lists([i[-w:] for i, _ in rows], [t[-w:] for _, t in rows])
            hidden = encode_sequences(model, win)  # (B, D)
            for b, u in enumerate(users):
                self._states[u] = _UserState(hidden[b].clone(), None)
            return
        seqs = Sequences.from_lists([i for i, _ in rows], [t for _, t in rows])
        hidden, parts = self._run(seqs, None, None)
        for b, u in enumerate(users):
            self._states[u] = _UserState(hidden[b].clone(), tuple(p[:, b].clone() for p in parts))

    def _step_states(self, step: dict[str, list[tuple[float, int]]]) -> None:
        users = list(step)
        rows, times = [], []
        first_gap = np.empty(len(users))
        for b, u in enumerate(users):
            evs = step[u]
            ts = self._hist_rows[self.users_.index_of(u)][1]  # list: no copy of the history
            before = ts[-len(evs) - 1] if len(ts) > len(evs) else None
            first_gap[b] = -1.0 if before is None else evs[0][0] - before
            rows.append([i for _, i in evs])
            times.append([t for t, _ in evs])
        seqs = Sequences.from_lists(rows, times)
        carried = [self._states[u].rnn for u in users]
        parts = tuple(torch.stack([c[j] for c in carried], dim=1)  # (L, B, D) for h and c
                      for j in range(len(carried[0])))
        hidden, parts = self._run(seqs, parts, first_gap)
        for b, u in enumerate(users):
            self._states[u] = _UserState(hidden[b].clone(), tuple(p[:, b].clone() for p in parts))

    def _run(self, seqs: Sequences, parts: tuple[torch.Tensor, ...] | None,
             first_gap: np.ndarray | None) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        """Recurrent run over whole rows from a carried state or fresh: the hidden vector
        after each row's last event (B, D) and the new state's parts (batch on dim 1)."""
        from prismrec.train.batching import event_gaps, gather_padded

        model = self.model_
        lengths = seqs.lengths
        t = max(int(lengths.max()), 1)
        x = torch.from_numpy(gather_padded(seqs.items, seqs.offsets[:-1], lengths, t))
        gaps = None
        if model.gap_emb is not None:
            g = event_gaps(seqs)
            if first_gap is not None:
                g[seqs.offsets[:-1]] = first_gap  # continue from the event before the batch
            gaps = torch.from_numpy(gather_padded(g, seqs.offsets[:-1], lengths, t, fill=-1.0))
        lens = torch.from_numpy(lengths)
        single = not isinstance(model.initial_state(1), tuple)  # GRU: one tensor
        carried = None if parts is None else (parts[0] if single else parts)
        out, new = model.run(x, lens, gaps, carried, exact_state=True)  # (B, T, D)
        hidden = out[torch.arange(len(lengths)), torch.from_numpy(lengths - 1)]  # (B, D)
        return hidden, ((new,) if single else tuple(new))

    def forget(self, user) -> bool:
        """Remove ``user``: their history, carried state and event ids; False if unknown.

        The user's id leaves ``users_`` (other users keep their order), so ``recommend``
        raises ``UnknownIdError`` for them until new events arrive. What the model's weights
        learned from the user stays until retraining.
        """
        self._check_fitted()
        key = Vocab._key(user)
        if key not in self.users_:
            return False
        r = self.users_.index_of(key)
        hist = self.histories_
        rest = np.delete(np.arange(len(hist), dtype=np.int64), r)
        users = self.users_.to_list()
        del users[r]
        states = {u: s for u, s in self._states.items() if u != key}
        event_ids = {e: u for e, u in self._event_ids.items() if u != key}
        self.users_ = Vocab.from_list(users)
        self.histories_ = hist.take(rest)
        self._states, self._event_ids, self._own_users = states, event_ids, True
        return True

    # -- interests ------------------------------------------------------------------------------
    def profile(self, user, **kwargs):
        """The user's named interests as a ``Profile`` (see ``prismrec.explain.interests``)."""
        from prismrec.explain.interests import profile_for

        return profile_for(self, user, **kwargs)

    def recommend_composed(self, user, k: int = 10, *, diversity: float = 0.0,
                           exclude_ids=None, exclude_categories=None,
                           filter_seen: bool = True) -> pd.DataFrame:
        """Top-``k`` composed from the user's interests, each with its interest and reason."""
        from prismrec.explain.interests import compose_for

        return compose_for(self, user, k, diversity=diversity, exclude_ids=exclude_ids,
                           exclude_categories=exclude_categories, filter_seen=filter_seen)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write a checkpoint folder (safetensors + JSON) that ``load`` reads back.

        Histories (streamed events included) go in the safetensors file; the item text
        vectors are part of the model's weights there; the catalogue, if any, goes to
        ``catalog.json`` (JSON rows, checksummed in ``checkpoint.json``); the encoder name
        and text template go in ``checkpoint.json``.
        """
        self._check_fitted()
        path = Path(path)
        h = self.histories_
        template = getattr(self, "text_template_", None)
        meta = {"recommender_format": RECOMMENDER_FORMAT, "users": self.users_.to_list(),
                "items": self.items_.to_list(),
                "result": ({k: v for k, v in self.result_.to_dict().items() if k != "history"}
                           if self.result_ is not None else {}),
                "text": {"encoder": getattr(self, "text_encoder_", None),
                         "template": None if template is None else template.to_dict()}}
        if getattr(self, "catalog_", None) is not None:
            path.mkdir(parents=True, exist_ok=True)
            data = json.dumps(_catalog_to_json(self.catalog_), ensure_ascii=False,
                              allow_nan=False, separators=(",", ":")).encode("utf-8")
            _write_bytes(path / CATALOG_FILE, data)
            meta["catalog"] = {"file": CATALOG_FILE, "items": len(self.catalog_),
                               "sha256": hashlib.sha256(data).hexdigest()}
        extra = {"history_offsets": torch.from_numpy(h.offsets),
                 "history_items": torch.from_numpy(h.items),
                 "history_times": torch.from_numpy(h.times)}
        return save_checkpoint(path, self.model_, train_config=self.train_config_, meta=meta,
                               extra=extra)

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """A fitted Recommender from ``save``'s folder; needs no training data.

        Checkpoints written before catalogues and text were saved load with
        ``catalog_``, ``text_encoder_`` and ``text_template_`` set to None.
        """
        from prismrec.text import TextTemplate

        path = Path(path)
        ck = load_checkpoint(path)
        meta, extra = ck.meta, ck.extra
        if meta.get("recommender_format") != RECOMMENDER_FORMAT:
            raise CheckpointError(f"{path} is a model checkpoint, not a saved Recommender")
        try:
            users, items = Vocab.from_list(meta["users"]), Vocab.from_list(meta["items"])
            hist = Sequences(extra["history_offsets"].numpy(), extra["history_items"].numpy(),
                             extra["history_times"].numpy())
            text = meta.get("text") or {}
            template = (None if text.get("template") is None
                        else TextTemplate.from_dict(text["template"]))
            encoder = text.get("encoder")
            if encoder is not None and not (isinstance(encoder.get("name"), str)
                                            and isinstance(encoder.get("dim"), int)):
                raise ValueError("the text encoder record needs a name and a dim")
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise CheckpointError(f"{path}: saved vocabularies, histories or text settings "
                                  f"are invalid ({exc})") from exc
        if len(items) != ck.model.n_items or len(hist) != len(users) or (
                hist.n_events and (hist.items.min() < 0 or hist.items.max() >= len(items))):
            raise CheckpointError(f"{path}: vocabularies, histories and model sizes disagree")
        rec = cls(ck.model.name, model_config=ck.model.config.to_dict(),
                  train_config=ck.train_config)
        rec.model_, rec.users_, rec.items_, rec.histories_ = ck.model, users, items, hist
        rec.train_config_ = ck.train_config or TrainConfig()
        r = meta.get("result") or {}
        rec.result_ = TrainResult(**{**r, "history": []}) if r else None
        rec.catalog_ = _read_catalog(path, meta.get("catalog"))
        rec.text_encoder_, rec.text_template_, rec._encoder = encoder, template, None
        return rec


# -- helpers --------------------------------------------------------------------------------------

def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _encoder_from_name(name: str) -> TextEncoder | None:
    """The encoder a saved name stands for, when prismrec can build it without guessing."""
    from prismrec.text import DEFAULT_MODEL, HashingEncoder, default_encoder

    if name in (DEFAULT_MODEL, f"sentence-transformers/{DEFAULT_MODEL}"):
        return default_encoder()
    m = re.fullmatch(r"hashing-(\d+)(-bigrams)?", name)
    if m:
        return HashingEncoder(int(m.group(1)), bigrams=m.group(2) is not None)
    return None


def _as_catalog(rows: pd.DataFrame | Catalog) -> Catalog:
    """A Catalog from a Catalog or a DataFrame with an ``item`` column (extra columns kept)."""
    if isinstance(rows, Catalog):
        return rows
    if not isinstance(rows, pd.DataFrame):
        raise TypeError(f"add_items takes a DataFrame or a Catalog, got {type(rows).__name__}")
    if "item" not in rows.columns:
        raise DataError(f"item rows need an 'item' column; columns present: "
                        f"{', '.join(map(repr, map(str, rows.columns))) or '(none)'}")
    if rows["item"].isna().any():
        raise DataError("item rows have a missing item id")
    named = {f: (f if f in rows.columns else None) for f in TEXT_FIELDS}
    cat = Catalog.from_frame(rows, item="item", source="item rows", **named)
    other = [c for c in rows.columns if c != "item" and c not in TEXT_FIELDS]
    if other:
        frame = cat.frame.copy()
        for c in other:
            frame[c] = rows[c].to_numpy()
        cat = Catalog(frame)
    return cat


def _merge_catalogs(old: Catalog | None, new: Catalog) -> Catalog:
    """``old`` with ``new``'s rows added or replacing; text fields a side lacks are blank."""
    if old is None:
        return new
    frame = old.merge(new).frame
    for f in TEXT_FIELDS:
        if f in frame.columns:
            blank = [] if f in ("categories", "tags") else ""
            frame[f] = [blank if not isinstance(v, (list, str)) else v for v in frame[f]]
    return Catalog(frame)


def _event_columns(events: pd.DataFrame) -> tuple[list[str], list[str], np.ndarray, list]:
    """(users, items, timestamps, event ids or None) of an events frame, validated."""
    if not isinstance(events, pd.DataFrame):
        raise TypeError(f"update takes a DataFrame of events, got {type(events).__name__}")
    missing = [c for c in ("user", "item", "timestamp") if c not in events.columns]
    if missing:
        raise DataError(f"events frame lacks column(s) {missing}; it needs user, item, "
                        "timestamp and may have event_id")
    for c in ("user", "item"):
        if events[c].isna().any():
            row = int(np.flatnonzero(events[c].isna().to_numpy())[0])
            raise DataError(f"events: row {row}: {c} id is missing")
    users = [Vocab._key(u) for u in events["user"]]
    items = [Vocab._key(i) for i in events["item"]]
    times = parse_timestamps(events["timestamp"], "events")
    ids = [None] * len(users)
    if "event_id" in events.columns:
        ids = [None if v is None or (isinstance(v, float) and math.isnan(v)) else Vocab._key(v)
               for v in events["event_id"]]
    return users, items, times, ids


def _json_value(v: Any) -> Any:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (list, tuple, np.ndarray)):
        return [_json_value(x) for x in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    if isinstance(v, (int, np.integer)):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if pd.isna(v):
        return None
    return str(v)  # dates and other objects: their text


def _catalog_to_json(cat: Catalog) -> dict:
    f = cat.frame
    return {"items": [str(i) for i in f.index],
            "columns": {str(c): [_json_value(v) for v in f[c].tolist()] for c in f.columns}}


def _read_catalog(path: Path, info: dict | None) -> Catalog | None:
    if info is None:
        return None
    file = path / str(info.get("file", CATALOG_FILE))
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{path}: the catalogue file {file.name} is missing or "
                              f"unreadable ({exc}); restore it from the same save") from exc
    if hashlib.sha256(data).hexdigest() != info.get("sha256"):
        raise CheckpointError(f"{file} does not match its checksum in checkpoint.json: "
                              "restore both from the same save")
    try:
        doc = json.loads(data.decode("utf-8"))
        frame = pd.DataFrame(doc["columns"], index=pd.Index(doc["items"], name="item"))
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{file} is not a valid catalogue ({exc})") from exc
    return Catalog(frame)


def _write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
