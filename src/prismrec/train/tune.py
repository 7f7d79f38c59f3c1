"""Hyper-parameter search over a small declared grid, selecting on validation only.

The test set never enters: ``tune`` takes training sequences and validation cases, and
each trial's score is its best validation metric (the same early stopping as ``Trainer``).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from prismrec.data.sequences import Sequences
from prismrec.data.split import EvalCases
from prismrec.models import MODELS
from prismrec.train.config import TrainConfig
from prismrec.train.trainer import Trainer

log = logging.getLogger(__name__)


def _resolve(model: str, names: list[str]) -> dict[str, tuple[str, str]]:
    """Grid key → ("model" | "train", field). Bare names must belong to exactly one config."""
    model_fields = {f.name for f in dataclasses.fields(MODELS[model].config_class)}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    out = {}
    for key in names:
        where, _, name = key.rpartition(".")
        if where:
            fields = {"model": model_fields, "train": train_fields}.get(where)
            if fields is None or name not in fields:
                raise ValueError(f"unknown setting {key!r}: use model.<field> or train.<field>")
            out[key] = (where, name)
            continue
        owners = [w for w, f in (("model", model_fields), ("train", train_fields)) if key in f]
        if not owners:
            raise ValueError(
                f"unknown setting {key!r}; {model} settings: {sorted(model_fields)}; "
                f"training settings: {sorted(train_fields)}"
            )
        if len(owners) > 1:
            raise ValueError(f"{key!r} is both a model and a training setting: write "
                             f"model.{key} or train.{key}")
        out[key] = (owners[0], key)
    return out


def tune(model: str, train: Sequences, valid: EvalCases, n_items: int,
         grid: dict[str, Sequence[Any]], *, search: str = "grid", n_trials: int | None = None,
         model_config: dict | None = None, train_config: TrainConfig | dict | None = None,
         seed: int = 0, text_vectors: np.ndarray | None = None,
         route_vectors: np.ndarray | None = None) -> pd.DataFrame:
    """Train one model per setting; a table sorted by validation NDCG@10, best first.

    ``grid`` maps a setting (``dim``, ``lr``, ``model.max_len`` ...) to the values to try.
    ``search="grid"`` tries every combination; ``"random"`` tries ``n_trials`` of them,
    drawn without replacement with ``seed``. The table has one column per setting and
    ``valid_ndcg@10``, ``valid_hr@10``, ``best_epoch``, ``epochs``, ``stopped`` (``epochs``,
    ``patience`` or ``time``: a ``max_seconds`` limit ended the trial), ``seconds``; its
    ``attrs["best"]`` holds the winning settings. ``text_vectors`` (N, D), one row per
    item, give every trial the ``id+text`` embedding (unless ``model_config`` names another);
    ``route_vectors`` (N, C) are the catalogue routing vectors of trials with
    ``interest_route="categories"``, or ``"auto"`` (the default) with the decay head on
    (``prismrec.recommender._routing.category_vectors``); without them "auto" trials route
    by item vectors.
    """
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; choose one of {sorted(MODELS)}")
    if not grid or any(len(v) == 0 for v in grid.values()):
        raise ValueError("grid must map each setting to at least one value")
    if search not in ("grid", "random"):
        raise ValueError(f"search must be 'grid' or 'random', got {search!r}")
    keys = list(grid)
    where = _resolve(model, keys)
    combos = list(itertools.product(*(list(grid[k]) for k in keys)))
    if search == "random":
        if n_trials is None or n_trials < 1:
            raise ValueError("random search needs n_trials >= 1")
        pick = np.random.default_rng(seed).permutation(len(combos))[:n_trials]
        combos = [combos[i] for i in sorted(pick)]
    base_train = (TrainConfig() if train_config is None else
                  TrainConfig.from_dict(train_config) if isinstance(train_config, dict)
                  else train_config)
    rows = []
    for n, values in enumerate(combos, 1):
        setting = dict(zip(keys, values, strict=True))
        m_cfg = dict(model_config or {})
        if text_vectors is not None:
            m_cfg.setdefault("embedding", "id+text")
        t_cfg = base_train.to_dict()
        for key, value in setting.items():
            (m_cfg if where[key][0] == "model" else t_cfg)[where[key][1]] = value
        tc = TrainConfig.from_dict(t_cfg)
        torch.manual_seed(tc.seed)
        tv = None if text_vectors is None else torch.as_tensor(
            np.asarray(text_vectors, dtype=np.float32))
        rv = None
        if route_vectors is not None and m_cfg.get("interest_route", "auto") != "item":
            rv = torch.as_tensor(np.asarray(route_vectors, dtype=np.float32))
        net = MODELS[model](n_items, m_cfg, text_vectors=tv, route_vectors=rv)
        t0 = time.perf_counter()
        result = Trainer(tc).fit(net, train, valid)
        row = {**setting, **{f"valid_{k}": v for k, v in result.best_metrics.items()},
               "best_epoch": result.best_epoch, "epochs": result.epochs,
               "stopped": result.stopped, "seconds": time.perf_counter() - t0}
        rows.append(row)
        log.info("trial %d/%d %s: valid ndcg@10 %.4f", n, len(combos), setting,
                 row.get("valid_ndcg@10", float("nan")))
    table = pd.DataFrame(rows)
    table = table.sort_values("valid_ndcg@10", ascending=False, kind="stable")
    table = table.reset_index(drop=True)
    best = table.iloc[0]
    table.attrs["best"] = {k: best[k].item() if hasattr(best[k], "item") else best[k]
                           for k in keys}
    return table
