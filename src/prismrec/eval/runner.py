"""One evaluation run, end to end: split, fit, select on validation, score the test set.

The result is the JSON document that ``prismrec evaluate --json`` writes: metrics under
``metrics`` (keys like ``"ndcg@10"``), plus dataset, split, model, config and timings.
"""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from prismrec import __version__
from prismrec.data import Dataset, Split
from prismrec.eval.baselines import BASELINES
from prismrec.eval.evaluate import evaluate, select_on_validation

# Grids searched on the validation cases; the chosen value is reported with the result.
GRIDS: dict[str, dict[str, list]] = {
    "pop": {},
    "itemknn": {"neighbours": [50, 200], "window": [5, 20]},
    "ease": {"lam": [10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0]},
}


@dataclass
class RunResult:
    dataset: str
    split: str
    model: str
    config: dict
    metrics: dict[str, float]
    ci: dict[str, list[float]]
    filter_seen: bool
    timings: dict[str, float]
    validation: list[dict] = field(default_factory=list)
    data: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "prismrec_version": __version__,
            "dataset": self.dataset,
            "split": self.split,
            "model": self.model,
            "config": self.config,
            "filter_seen": self.filter_seen,
            "metrics": self.metrics,
            "ci95": self.ci,
            "timings": self.timings,
            "validation": self.validation,
            "data": self.data,
            "machine": {"cpus": torch.get_num_threads(), "platform": platform.platform()},
        }


def _grid(params: dict[str, list]) -> list[dict]:
    out: list[dict] = [{}]
    for key, values in params.items():
        out = [{**c, key: v} for c in out for v in values]
    return out


def run_baseline(
    dataset: Dataset,
    model: str,
    *,
    split: str | Split = "default",
    ks: tuple[int, ...] = (10, 20, 50),
    filter_seen: bool = True,
    select_metric: str = "ndcg@10",
) -> RunResult:
    """Fit a baseline, choose its settings on validation, and evaluate on the test cases.

    ``split`` names a split of ``dataset`` or is one already made from it.
    """
    if model not in BASELINES:
        raise ValueError(f"unknown baseline {model!r}; choose one of {', '.join(BASELINES)}")
    sp: Split = split if isinstance(split, Split) else dataset.split(split)
    n_items = len(dataset.items)
    popularity = np.bincount(sp.train.items, minlength=n_items)
    t0 = time.perf_counter()
    best, fitted, table = select_on_validation(
        lambda params: BASELINES[model](**params), _grid(GRIDS[model]), sp.train, sp.valid,
        n_items, metric=select_metric, filter_seen=filter_seen)
    t_select = time.perf_counter() - t0
    t0 = time.perf_counter()
    rep = evaluate(fitted, sp.test, ks=ks, filter_seen=filter_seen, item_popularity=popularity)
    t_eval = time.perf_counter() - t0
    return RunResult(
        dataset=dataset.name,
        split=sp.name,
        model=model,
        config=best,
        metrics={k: float(v) for k, v in rep.metrics.items()},
        ci={k: [float(a), float(b)] for k, (a, b) in rep.ci.items()},
        filter_seen=filter_seen,
        timings={"fit_and_select_s": t_select, "evaluate_s": t_eval},
        validation=table.to_dict(orient="records"),
        data={**dataset.summary(), "test_cases": len(sp.test), "valid_cases": len(sp.valid)},
    )
