"""The result of one evaluation: means, per-case values and bootstrap intervals."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd


def _num(x: float) -> float | None:
    """JSON has no NaN: missing values become null."""
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


@dataclass
class Report:
    """Full-ranking metrics of one scorer on one set of cases.

    ``metrics`` holds the means ("ndcg@10", "hr@10", "recall@10", "mrr@10", "coverage@10",
    "novelty@10", ...). ``per_user`` has one row per case (user index, number of targets,
    best target rank, and the per-case metrics). ``ci`` holds the 95% bootstrap interval of
    each per-case mean; coverage is a catalogue-level number and has none. ``filter_seen``
    records whether items in the history were removed from the ranking, because numbers
    with and without it are not comparable.
    """

    metrics: dict[str, float]
    per_user: pd.DataFrame
    ci: dict[str, tuple[float, float]]
    filter_seen: bool
    n_cases: int
    n_items: int
    ks: tuple[int, ...]
    info: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> float:
        return self.metrics[name]

    def to_dict(self) -> dict:
        """JSON-ready summary (no per-case rows)."""
        return {
            "metrics": {k: _num(v) for k, v in self.metrics.items()},
            "ci": {k: [_num(lo), _num(hi)] for k, (lo, hi) in self.ci.items()},
            "filter_seen": bool(self.filter_seen),
            "n_cases": int(self.n_cases),
            "n_items": int(self.n_items),
            "ks": [int(k) for k in self.ks],
            "protocol": "full ranking, conservative ties",
            **({"info": self.info} if self.info else {}),
        }

    def table(self) -> pd.DataFrame:
        """One row per metric: metric, mean, ci_low, ci_high (NaN where there is no interval)."""
        rows = [
            (name, value, *self.ci.get(name, (math.nan, math.nan)))
            for name, value in self.metrics.items()
        ]
        return pd.DataFrame(rows, columns=["metric", "mean", "ci_low", "ci_high"])

    def __str__(self) -> str:
        k = self.ks[0]
        parts = []
        for name in (f"ndcg@{k}", f"hr@{k}", f"mrr@{k}", f"coverage@{k}"):
            if name in self.metrics:
                lo, hi = self.ci.get(name, (math.nan, math.nan))
                interval = "" if math.isnan(lo) else f" [{lo:.4f}, {hi:.4f}]"
                parts.append(f"{name}={self.metrics[name]:.4f}{interval}")
        seen = "seen filtered" if self.filter_seen else "seen kept"
        return f"Report({self.n_cases} cases, {self.n_items} items, {seen}): " + ", ".join(parts)
