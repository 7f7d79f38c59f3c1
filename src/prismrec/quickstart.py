"""The main job on the embedded data: generate a shop, train the LSTM, compare, recommend.

``prismrec quickstart`` runs ``run()``: about a minute on two idle CPU cores; there is no time
limit, so on a busy machine it takes longer rather than training less.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from prismrec.data import leave_one_out
from prismrec.data.synthetic import SyntheticData, generate
from prismrec.eval import BASELINES, evaluate, popularity
from prismrec.recommender import Recommender

# Small enough to train in well under a minute on 2 cores, large enough to show drift.
DATA = {"n_users": 2000, "n_items": 1000, "seed": 0}
# Few users, so small batches and a higher learning rate: enough steps per epoch to converge
# in a handful of epochs. No time limit: early stopping ends the run (a limit passed in
# ``train`` that stops it is printed: "stopped by time after N epochs").
TRAIN = {"epochs": 30, "patience": 3, "batch_size": 32, "lr": 3e-3, "weight_decay": 0.01}


@dataclass
class QuickstartResult:
    table: pd.DataFrame  # model, ndcg@10, hr@10, train_s
    stopped: str = ""  # how the sequence model's training ended, in words
    examples: list[dict] = field(default_factory=list)  # user, recent, truth, recommendations
    checkpoint: Path | None = None
    seconds: float = 0.0


def run(out: str | Path | None = None, *, model: str = "lstm", progress: bool = False,
        data: dict | None = None, train: dict | None = None) -> QuickstartResult:
    """Generate, split (leave-one-out), train ``model``, evaluate against baselines."""
    t_start = time.perf_counter()
    synth = generate(**{**DATA, **(data or {})})
    ds = synth.to_dataset()
    split = leave_one_out(ds.sequences)
    n_items = len(ds.items)
    rows = []
    for name in ("pop", "itemknn", "ease"):
        t0 = time.perf_counter()
        baseline = BASELINES[name]().fit(split.train, n_items)
        fit_s = time.perf_counter() - t0
        rep = evaluate(baseline, split.test, ks=(10,), n_bootstrap=0)
        rows.append({"model": name, "ndcg@10": rep.metrics["ndcg@10"],
                     "hr@10": rep.metrics["hr@10"], "train_s": fit_s})
    rec = Recommender(model, train_config={**TRAIN, "progress": progress, **(train or {})})
    t0 = time.perf_counter()
    rec.fit_split(split, ds.users, ds.items, ds.catalog, histories=ds.sequences)
    fit_s = time.perf_counter() - t0
    rep = evaluate(rec, split.test, ks=(10,), n_bootstrap=0,
                   item_popularity=popularity(split.train, n_items))
    rows.append({"model": model, "ndcg@10": rep.metrics["ndcg@10"],
                 "hr@10": rep.metrics["hr@10"], "train_s": fit_s})
    r = rec.result_
    if r.stopped == "time":
        stopped = (f"stopped by time after {r.epochs} epochs "
                   f"(max_seconds={rec.train_config_.max_seconds:g})")
    elif r.stopped == "patience":
        stopped = f"stopped early after {r.epochs} epochs (best: epoch {r.best_epoch})"
    else:
        stopped = f"ran all {r.epochs} epochs (best: epoch {r.best_epoch})"
    result = QuickstartResult(pd.DataFrame(rows), stopped=f"{model}: {stopped}")
    result.examples = _examples(rec, synth, ds.sequences)
    if out is not None:
        result.checkpoint = rec.save(out)
    result.seconds = time.perf_counter() - t_start
    return result


def _examples(rec: Recommender, synth: SyntheticData, seqs, n: int = 3) -> list[dict]:
    """Top-10 for the first ``n`` users from their whole history, with the true interest."""
    frame = synth.interactions.frame
    titles = synth.catalog.frame["title"]
    out = []
    for row in range(n):
        user = rec.users_.ids([row])[0]
        items = rec.items_.ids(seqs.row(row))
        recs = rec.recommend_for_sequence(items, k=10)
        truth = frame.loc[frame["user"] == user, "interest"].to_numpy()
        out.append({
            "user": user,
            "recent": [titles[i] for i in items[-5:]],
            "current_interest": synth.categories[int(truth[-1])],
            "interests_over_history": _runs([synth.categories[int(t)] for t in truth]),
            "recommendations": [
                {"item": it, "title": titles[it],
                 "category": ", ".join(synth.catalog.frame.at[it, "categories"])}
                for it in recs["item"]
            ],
        })
    return out


def _runs(labels: list[str]) -> list[str]:
    """Consecutive duplicates collapsed: the order in which interests came and went."""
    return [lab for i, lab in enumerate(labels) if i == 0 or labels[i - 1] != lab]


def format_result(result: QuickstartResult) -> str:
    lines = ["Leave-one-out test on the synthetic shop (full ranking, seen items filtered):", ""]
    lines.append(f"  {'model':<10}{'NDCG@10':>10}{'HR@10':>10}{'train s':>10}")
    for r in result.table.itertuples():
        lines.append(f"  {r.model:<10}{r._2:>10.4f}{r._3:>10.4f}{r.train_s:>10.1f}")
    if result.stopped:
        lines.append(f"  ({result.stopped})")
    for ex in result.examples:
        lines += ["", f"User {ex['user']} — interests over time: "
                  f"{' → '.join(ex['interests_over_history'])}",
                  f"  last 5 events: {'; '.join(ex['recent'])}", "  top 10:"]
        for i, r in enumerate(ex["recommendations"], 1):
            lines.append(f"    {i:>2}. {r['title']}  [{r['category']}]")
    if result.checkpoint is not None:
        lines += ["", f"Model saved to {result.checkpoint}; try: prismrec recommend "
                  f"--checkpoint {result.checkpoint} --user {result.examples[0]['user']}"]
    lines += ["", f"Done in {result.seconds:.0f} s."]
    return "\n".join(lines)

