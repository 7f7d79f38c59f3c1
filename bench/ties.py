"""Tied timestamps: how much of a score comes from the file's order inside ties.

For each dataset: the share of validation and test targets whose timestamp equals the
previous event's, then EASE and a GRU evaluated with the file's order (`--ties file`) and with
a seeded shuffle inside equal timestamps (`--ties shuffle`). Writes the `ties` section of
docs/benchmarks.md.

    python bench/ties.py [--data-dir ../shared/data] [--gru-epochs 8] [--write]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from _report import SHARED_DATA, command, machine, markdown_table, write_section

from prismrec import Recommender
from prismrec.eval import evaluate
from prismrec.eval.runner import run_baseline
from prismrec.runs import DataSpec, prepare

DATASETS = [("ml-100k", "ml-100k", "loo"), ("amazon-scientific", "amazon-scientific-unisrec",
                                             "given")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(SHARED_DATA))
    ap.add_argument("--gru-epochs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--share-only", default="amazon-scientific",
                    help="datasets whose tied shares are reported without training models")
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows, notes = [], []
    for name, folder, split in DATASETS:
        path = os.path.join(a.data_dir, folder)
        if not os.path.isdir(path):
            notes.append(f"{name}: not found under {a.data_dir}, skipped")
            continue
        for ties in ("file", "shuffle"):
            try:
                prep = prepare(DataSpec(name, path, split=split, ties=ties))
            except ValueError as exc:
                notes.append(f"{name}, --ties {ties}: {exc}")
                continue
            base = {"dataset": name, "split": prep.split.name, "ties": ties,
                    "tied valid": round(prep.tied["valid"], 4),
                    "tied test": round(prep.tied["test"], 4)}
            if name in a.share_only.split(","):
                rows.append({**base, "model": "(shares only)"})
                continue
            t0 = time.perf_counter()
            ease = run_baseline(prep.dataset, "ease", split=prep.split, ks=(10,))
            rows.append({**base, "model": "ease", "test NDCG@10": ease.metrics["ndcg@10"],
                         "test HR@10": ease.metrics["hr@10"],
                         "s": round(time.perf_counter() - t0, 1)})
            print(rows[-1], flush=True)
            t0 = time.perf_counter()
            rec = Recommender("gru", train_config={"epochs": a.gru_epochs, "progress": False,
                                                   "threads": a.threads})
            rec.fit_split(prep.split, prep.dataset.users, prep.dataset.items)
            rep = evaluate(rec, prep.split.test, ks=(10,), n_bootstrap=0)
            rows.append({**base, "model": f"gru ({rec.result_.epochs} epochs)",
                         "test NDCG@10": rep.metrics["ndcg@10"],
                         "test HR@10": rep.metrics["hr@10"],
                         "s": round(time.perf_counter() - t0, 1)})
            print(rows[-1], flush=True)
    body = "\n".join([
        "## Tied timestamps: file order vs shuffled ties", "",
        f"`{command()}` on {machine()}; the machine was shared with other engineers' jobs, so "
        "the seconds are noisy. 'tied valid/test': share of validation/test targets whose "
        "timestamp equals the previous event's (their order relative to it came from the "
        "file). 'shuffle' reorders events inside equal timestamps with seed 0 before the "
        "split (`--ties shuffle`); metrics are full ranking, seen items filtered, settings of "
        "EASE chosen on validation, GRU with default training settings capped at "
        f"{a.gru_epochs} epochs (early stopping on validation).", "",
        markdown_table(rows, list(rows[0])) if rows else "(no rows)", "",
        *[f"- {n}" for n in notes], "",
        "Amazon Scientific here is the UniSRec preprocessing, whose timestamps were removed: "
        "events carry their position, so no target is tied and its shipped split cannot be "
        "reshuffled; a raw Amazon 2018 reviews file (`--dataset amazon-2018`) has dated "
        "events with many same-day ties, for which the same two runs are the check."])
    if a.write:
        write_section("ties", body)
    print(body)


if __name__ == "__main__":
    main()
