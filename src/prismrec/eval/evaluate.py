"""Full-ranking evaluation of any scorer on evaluation cases, and selection on validation.

Every catalogue item is a candidate; sampled-negative metrics are deliberately not offered
(they rank models inconsistently, Krichene & Rendle 2020). The scorer sees only the case
history: the targets, and anything after them, never reach it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd

from prismrec.data.sequences import Sequences
from prismrec.data.split import EvalCases
from prismrec.errors import DataError
from prismrec.eval import metrics as M
from prismrec.eval.report import Report

log = logging.getLogger(__name__)

MAX_BATCH_FLOATS = 64_000_000  # one (B, N) score matrix at a time: about 256 MB in float32


@runtime_checkable
class Scorer(Protocol):
    """Anything that scores the whole catalogue for a batch of users given their histories."""

    def score(self, users: np.ndarray, histories: Sequences) -> np.ndarray:
        """(B, n_items) float scores, higher is better; row b belongs to users[b]."""
        ...


def _check_ks(ks: Iterable[int]) -> tuple[int, ...]:
    ks = tuple(int(k) for k in ks)
    if not ks or any(k < 1 for k in ks):
        raise ValueError(f"ks must be positive cut-offs such as (10, 20, 50), got {ks}")
    return tuple(sorted(set(ks)))


def _batch_scores(scorer: Scorer, users: np.ndarray, history: Sequences,
                  n_items: int | None) -> np.ndarray:
    raw = scorer.score(users, history)
    scores = np.asarray(raw)
    if scores.ndim != 2 or scores.shape[0] != len(users):
        raise DataError(
            f"{type(scorer).__name__}.score must return a (batch, n_items) array; got shape "
            f"{scores.shape} for a batch of {len(users)}"
        )
    if n_items is not None and scores.shape[1] != n_items:
        raise DataError(
            f"{type(scorer).__name__}.score returned {scores.shape[1]} columns, earlier batches "
            f"had {n_items}: every batch must score the whole catalogue"
        )
    # own copy: filtering writes into it, and the scorer may hand out shared or read-only arrays
    dtype = scores.dtype if scores.dtype.kind == "f" else np.float32
    scores = np.array(scores, dtype=dtype, copy=True)
    if np.isnan(scores).any():
        raise DataError(f"{type(scorer).__name__}.score returned NaN scores; fix the model")
    return scores


def evaluate(scorer: Scorer, cases: EvalCases, *, ks: Iterable[int] = (10, 20, 50),
             filter_seen: bool = True, batch_size: int = 1024,
             item_popularity: np.ndarray | None = None, n_bootstrap: int = 1000,
             seed: int = 0) -> Report:
    """Rank the whole catalogue for every case and report hr/recall/ndcg/mrr/coverage/novelty.

    ``filter_seen`` sets every item of a case's history to -inf before ranking, targets
    included: a target the user already had counts as a miss rather than being let through by
    looking at the answer. ``item_popularity`` (training counts per item, see
    ``metrics.popularity``) enables novelty. Intervals are percentile bootstraps over cases
    with ``n_bootstrap`` resamples (0 skips them), deterministic for a given ``seed``.
    At most ``batch_size`` cases go to the scorer at once, fewer when the catalogue is large,
    so one (B, N) score matrix stays under ``MAX_BATCH_FLOATS``.
    See ``prismrec.eval.metrics`` for the exact metric definitions.
    """
    if not isinstance(scorer, Scorer):
        raise TypeError(f"{type(scorer).__name__} has no score(users, histories) method")
    ks = _check_ks(ks)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n = len(cases)
    if n == 0:
        raise DataError("no evaluation cases: the split left no user with a history and a target")
    info = None if item_popularity is None else M.self_information(item_popularity)
    k_max = max(ks)
    per_case: dict[str, list[np.ndarray]] = {}
    covered: dict[int, np.ndarray] = {}
    n_items: int | None = None
    bs = 1  # the first batch is one case: it tells the catalogue size that bounds the rest
    start = 0
    while start < n:
        stop = min(start + bs, n)
        rows = np.arange(start, stop)
        hist = cases.history.take(rows)
        scores = _batch_scores(scorer, cases.users[rows], hist, n_items)
        if n_items is None:
            n_items = scores.shape[1]
            covered = {k: np.zeros(n_items, dtype=bool) for k in ks}
            bs = max(1, min(batch_size, MAX_BATCH_FLOATS // max(n_items, 1)))
            if info is not None and len(info) != n_items:
                raise DataError(
                    f"item_popularity has {len(info)} items but the scorer ranks {n_items}"
                )
        tgt = cases.targets.take(rows)
        for what, seq in (("history", hist), ("target", tgt)):
            if seq.n_events and (seq.items.min() < 0 or seq.items.max() >= n_items):
                raise DataError(f"{what} items must be indices in [0, {n_items})")
        if filter_seen:
            scores[hist.row_ids(), hist.items] = -np.inf
        t_rows, t_items = M.unique_targets(tgt)
        ranks = M.target_ranks(scores, t_rows, t_items)
        batch = M.ranking_metrics(t_rows, ranks, len(rows), ks)
        batch["n_targets"] = np.bincount(t_rows, minlength=len(rows))
        top, valid = M.top_k(scores, k_max)
        for k in ks:
            covered[k][top[:, :k][valid[:, :k]]] = True
            if info is not None:
                with np.errstate(invalid="ignore"):  # a fully filtered row has no list: NaN
                    v = valid[:, :k]
                    batch[f"novelty@{k}"] = (info[top[:, :k]] * v).sum(1) / v.sum(1)
        for name, values in batch.items():
            per_case.setdefault(name, []).append(values)
        start = stop
        log.debug("evaluated %d/%d cases", stop, n)

    cols = {name: np.concatenate(parts) for name, parts in per_case.items()}
    metric_names = [f"{m}@{k}" for k in ks for m in ("ndcg", "hr", "recall", "mrr")]
    metric_names += [f"novelty@{k}" for k in ks if info is not None]
    per_user = pd.DataFrame({"user": cases.users, "n_targets": cols["n_targets"],
                             "rank": cols["rank"], **{m: cols[m] for m in metric_names}})
    means = {m: float(np.nanmean(cols[m])) if (~np.isnan(cols[m])).any() else float("nan")
             for m in metric_names}
    for k in ks:
        means[f"coverage@{k}"] = float(covered[k].mean())
    ordered = {}
    for k in ks:
        for m in ("ndcg", "hr", "recall", "mrr", "coverage", "novelty"):
            if f"{m}@{k}" in means:
                ordered[f"{m}@{k}"] = means[f"{m}@{k}"]
    lo, hi = M.bootstrap_ci(np.column_stack([cols[m] for m in metric_names]), n_bootstrap, seed)
    ci = ({m: (float(a), float(b)) for m, a, b in zip(metric_names, lo, hi, strict=True)}
          if n_bootstrap > 0 else {})
    return Report(ordered, per_user, ci, bool(filter_seen), n, int(n_items), ks,
                  {"n_bootstrap": int(n_bootstrap), "seed": int(seed)})


def parse_cutoff(metric: str) -> int:
    """The K of a metric name such as "ndcg@10"."""
    name, _, k = metric.partition("@")
    if not name or not k.isdigit() or int(k) < 1:
        raise ValueError(f"metric must look like 'ndcg@10', got {metric!r}")
    return int(k)


def select_on_validation(factory: Callable[[Any], Any], grid: Iterable, train: Sequences,
                         valid: EvalCases, n_items: int, *, metric: str = "ndcg@10",
                         filter_seen: bool = True) -> tuple[Any, Any, pd.DataFrame]:
    """Fit ``factory(value)`` on ``train`` for each grid value; keep the best on ``valid``.

    Returns (best value, the model fitted with it, table of value -> validation metric).
    Ties go to the earliest grid value, so the choice is the same every run.
    """
    grid = list(grid)
    if not grid:
        raise ValueError("grid is empty: give at least one value to try")
    k = parse_cutoff(metric)
    best_value, best_model, best_score, rows = None, None, -np.inf, []
    for value in grid:
        model = factory(value).fit(train, n_items)
        report = evaluate(model, valid, ks=(k,), filter_seen=filter_seen, n_bootstrap=0)
        if metric not in report.metrics:
            raise ValueError(f"unknown metric {metric!r}; choose one of {list(report.metrics)}")
        score = report.metrics[metric]
        rows.append({"value": value, metric: score})
        log.info("validation %s=%.5f for %r", metric, score, value)
        if score > best_score:
            best_value, best_model, best_score = value, model, score
    return best_value, best_model, pd.DataFrame(rows)
