"""Baselines (MostPopular, ItemKNN, EASE) on every real dataset the loaders read.

Full ranking on the test cases, settings chosen on validation, with seen items filtered and
unfiltered. Writes the `baselines` section of docs/benchmarks.md.

    python bench/baselines.py [--data-dir ../shared/data] [--datasets ml-100k,...]
"""

from __future__ import annotations

import argparse
import time

import torch
from _report import SHARED_DATA, command, machine, markdown_table, peak_rss_mb, write_section

from prismrec.data import load_dataset
from prismrec.eval.runner import run_baseline

# (registry name, folder under shared/data, split)
DATASETS = [
    ("amazon-scientific", "amazon-scientific-unisrec", "given"),
    ("ml-100k", "ml-100k", "loo"),
    ("ml-latest-small", "ml-latest-small", "loo"),
    ("ml-1m-sas", "ml-1m-sas", "given"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(SHARED_DATA))
    ap.add_argument("--datasets", default=",".join(d for d, _, _ in DATASETS))
    ap.add_argument("--models", default="pop,itemknn,ease")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    wanted = set(args.datasets.split(","))
    rows = []
    for name, folder, split in DATASETS:
        if name not in wanted:
            continue
        t0 = time.perf_counter()
        ds = load_dataset(name, f"{args.data_dir}/{folder}")
        load_s = time.perf_counter() - t0
        for model in args.models.split(","):
            row = {"dataset": name, "split": split, "model": model}
            for filt in (True, False):
                r = run_baseline(ds, model, split=split, filter_seen=filt)
                tag = "filtered" if filt else "unfiltered"
                row[f"NDCG@10 {tag}"] = r.metrics["ndcg@10"]
                row[f"HR@10 {tag}"] = r.metrics["hr@10"]
                if filt:
                    row["Recall@50"] = r.metrics["recall@50"]
                    row["coverage@10"] = r.metrics["coverage@10"]
                    row["chosen"] = ", ".join(f"{k}={v}" for k, v in r.config.items()) or "-"
                    row["fit+select s"] = r.timings["fit_and_select_s"]
            row["load s"] = load_s
            rows.append(row)
            print(row, flush=True)
    cols = ["dataset", "split", "model", "NDCG@10 filtered", "HR@10 filtered", "Recall@50",
            "NDCG@10 unfiltered", "HR@10 unfiltered", "coverage@10", "chosen", "fit+select s"]
    table = markdown_table(rows, cols)
    print(table)
    write_section("baselines", f"""
## Baselines

Full ranking over the whole catalogue on the test cases; settings chosen on the validation
cases (NDCG@10). "filtered" removes items the user already interacted with (our default);
"unfiltered" is how RecBole scores sequential models. ml-1m-sas uses the skip-one protocol
its data allows (see the data README). Peak RSS of the whole run: {peak_rss_mb():.0f} MB.

Command: `{command()}` — machine: {machine()}.

{table}
""")


if __name__ == "__main__":
    main()
