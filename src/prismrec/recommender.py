"""``Recommender``: the user-facing object — ids in, DataFrames out, one sequence model inside.

Two ways to fit, for two purposes:

- ``fit(data)`` trains for use. ``data`` is a ``Dataset``, an ``Interactions`` table or a
  DataFrame with user/item/timestamp columns. Every event is history; to choose the epoch,
  each user's last event is held out as the validation target (users with at least 3
  events), and it is still part of the history the recommendations start from.
- ``fit_split(split, users, items)`` trains on ``split.train`` and stops early on
  ``split.valid``: the benchmark path, where ``split.test`` is scored later with ``score``.

Scikit-learn manners: ``__init__`` stores parameters only; learned state (``model_``,
``users_``, ``items_``, ``histories_``, ``result_``) exists after fitting or loading.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from prismrec.data.catalog import Catalog
from prismrec.data.dataset import Dataset
from prismrec.data.interactions import Interactions
from prismrec.data.sequences import Sequences
from prismrec.data.split import EvalCases, Split
from prismrec.data.vocab import Vocab
from prismrec.errors import CheckpointError, DataError, UnknownIdError
from prismrec.models import MODELS, EncoderConfig, SequenceEncoder
from prismrec.train.checkpoint import load_checkpoint, save_checkpoint
from prismrec.train.config import TrainConfig
from prismrec.train.inference import score_sequences
from prismrec.train.trainer import Trainer, TrainResult

RECOMMENDER_FORMAT = 1


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

    # -- fitting --------------------------------------------------------------------------
    def _train_config(self) -> TrainConfig:
        c = self.train_config
        c = TrainConfig() if c is None else TrainConfig.from_dict(c) if isinstance(c, dict) else c
        c.validate()
        return c

    def _build(self, n_items: int, seed: int,
               text_vectors: np.ndarray | None) -> SequenceEncoder:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose one of {sorted(MODELS)}")
        cfg = self.model_config
        if isinstance(cfg, EncoderConfig):
            cfg = cfg.to_dict()
        mode = (cfg or {}).get("embedding", "id")
        if (mode == "id") != (text_vectors is None):
            raise ValueError(
                f"model_config embedding={mode!r} and text_vectors disagree: text modes "
                "('text', 'id+text') need text_vectors (one row per item, in item vocabulary "
                "order, e.g. from prismrec.text.encode_catalog) and 'id' takes none"
            )
        tv = None
        if text_vectors is not None:
            tv = torch.as_tensor(np.asarray(text_vectors, dtype=np.float32))
            if tv.ndim != 2 or tv.shape[0] != n_items:
                raise DataError(f"text_vectors must have shape ({n_items}, D), one row per "
                                f"item; got {tuple(tv.shape)}")
        torch.manual_seed(seed)
        return MODELS[self.model](n_items, cfg, text_vectors=tv)

    def fit(self, data: Dataset | Interactions | pd.DataFrame, catalog: Catalog | None = None,
            *, valid: bool = True, text_vectors: np.ndarray | None = None) -> Recommender:
        """Train on all events of ``data`` (see the module docstring); returns self.

        ``valid=False`` trains for ``train_config.epochs`` without holding anything out.
        ``text_vectors`` (one row per item of the item vocabulary) feed the text modes of
        the item embedding (``model_config={"embedding": "id+text"}``).
        """
        if isinstance(data, pd.DataFrame):
            data = Interactions.from_frame(data)
        if isinstance(data, Interactions):
            data = Dataset.from_interactions("data", data, catalog)
        if not isinstance(data, Dataset):
            raise TypeError("fit takes a Dataset, an Interactions table or a DataFrame")
        seqs = data.sequences
        if valid:
            train, cases = holdout_last(seqs)
            if len(cases) == 0:
                train, cases = seqs, None
        else:
            train, cases = seqs, None
        self._fit(train, cases, data.users, data.items, seqs, text_vectors)
        self.catalog_ = data.catalog if catalog is None else catalog
        return self

    def fit_split(self, split: Split, users: Vocab, items: Vocab,
                  catalog: Catalog | None = None, *,
                  text_vectors: np.ndarray | None = None) -> Recommender:
        """Train on ``split.train``, stop early on ``split.valid``; returns self."""
        self._fit(split.train, split.valid if len(split.valid) else None, users, items,
                  split.train, text_vectors)
        self.catalog_ = catalog
        return self

    def _fit(self, train: Sequences, valid: EvalCases | None, users: Vocab, items: Vocab,
             histories: Sequences, text_vectors: np.ndarray | None = None) -> None:
        if len(items) == 0 or train.n_events == 0:
            raise DataError("no events to train on")
        if len(histories) != len(users):
            raise DataError(f"{len(histories)} histories for {len(users)} users")
        tc = self._train_config()
        self.model_ = self._build(len(items), tc.seed, text_vectors)
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
        """
        self._check_fitted()
        ids = [users] if isinstance(users, (str, bytes, int, np.integer)) else list(users)
        rows = np.empty(len(ids), dtype=np.int64)
        for i, u in enumerate(ids):
            try:
                rows[i] = self.users_.index_of(u)
            except UnknownIdError:
                raise UnknownIdError(
                    f"unknown user {Vocab._key(u)!r}: not in the training data; use "
                    "recommend_for_sequence() with their items instead"
                ) from None
        hist = self.histories_.take(rows)
        scores = score_sequences(self.model_, hist)
        values, indices = self._top(scores, hist if filter_seen else None, k)
        return self._frame(self.users_.ids(rows), values, indices)

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

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write a checkpoint folder (safetensors + JSON) that ``load`` reads back."""
        self._check_fitted()
        h = self.histories_
        meta = {"recommender_format": RECOMMENDER_FORMAT, "users": self.users_.to_list(),
                "items": self.items_.to_list(),
                "result": {k: v for k, v in self.result_.to_dict().items() if k != "history"}}
        extra = {"history_offsets": torch.from_numpy(h.offsets),
                 "history_items": torch.from_numpy(h.items),
                 "history_times": torch.from_numpy(h.times)}
        return save_checkpoint(path, self.model_, train_config=self.train_config_, meta=meta,
                               extra=extra)

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """A fitted Recommender from ``save``'s folder; needs no training data."""
        ck = load_checkpoint(path)
        meta, extra = ck.meta, ck.extra
        if meta.get("recommender_format") != RECOMMENDER_FORMAT:
            raise CheckpointError(f"{path} is a model checkpoint, not a saved Recommender")
        try:
            users, items = Vocab.from_list(meta["users"]), Vocab.from_list(meta["items"])
            hist = Sequences(extra["history_offsets"].numpy(), extra["history_items"].numpy(),
                             extra["history_times"].numpy())
        except (KeyError, ValueError, TypeError) as exc:
            raise CheckpointError(f"{path}: saved vocabularies or histories are invalid "
                                  f"({exc})") from exc
        if len(items) != ck.model.n_items or len(hist) != len(users) or (
                hist.n_events and (hist.items.min() < 0 or hist.items.max() >= len(items))):
            raise CheckpointError(f"{path}: vocabularies, histories and model sizes disagree")
        rec = cls(ck.model.name, model_config=ck.model.config.to_dict(),
                  train_config=ck.train_config)
        rec.model_, rec.users_, rec.items_, rec.histories_ = ck.model, users, items, hist
        rec.train_config_ = ck.train_config or TrainConfig()
        r = meta.get("result") or {}
        rec.result_ = TrainResult(**{**r, "history": []}) if r else None
        rec.catalog_ = None
        return rec
