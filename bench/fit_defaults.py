"""What ``Recommender(model).fit(data)`` costs with its default settings on the synthetic shop.

Fits each model with ``TrainConfig()`` defaults on the embedded synthetic data (2,000 users,
1,000 items) exactly as the README's Python snippet does, and scores the leave-one-out test
cases (the fit holds out each user's last event of its training rows for early stopping).
Writes the `fit_defaults` section of docs/benchmarks.md.

    python bench/fit_defaults.py [--models lstm,gru,sasrec] [--threads 2] [--write]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from _report import command, machine, markdown_table, write_section

from prismrec import Recommender
from prismrec.data import Dataset, load_dataset
from prismrec.eval import evaluate
from prismrec.train import TrainConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="lstm,gru,sasrec")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    data = load_dataset("synthetic")
    split = data.split("loo")
    # fit() sees every event but the test cases': the data with each user's test event cut
    train_data = Dataset(data.name, split.train_and_valid(), data.users, data.items,
                         data.catalog)
    rows = []
    for model in a.models.split(","):
        load0 = os.getloadavg()[0]
        t0, c0 = time.perf_counter(), time.process_time()
        rec = Recommender(model, train_config={"progress": False,
                                               "threads": a.threads}).fit(train_data)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rep = evaluate(rec, split.test, ks=(10,), n_bootstrap=0)
        r = rec.result_
        rows.append({"model": model, "fit s": round(wall, 1), "CPU s": round(cpu, 1),
                     "epochs": r.epochs, "best epoch": r.best_epoch, "stopped by": r.stopped,
                     "test NDCG@10": round(rep.metrics["ndcg@10"], 4),
                     "test HR@10": round(rep.metrics["hr@10"], 4),
                     "load avg": f"{load0:.1f}-{os.getloadavg()[0]:.1f}"})
        print(rows[-1], flush=True)
    d = TrainConfig()
    body = "\n".join([
        "## What `Recommender(model).fit(data)` costs with default settings", "",
        f"`{command()}` on {machine()}. The machine was shared with other engineers' jobs "
        "while this ran ('load avg': 1-minute load at start and end of the fit; above 2 "
        "means other work competed for the 2 cores, so wall time overstates the cost; 'CPU "
        "s' is this process's CPU time).", "",
        f"Defaults: epochs {d.epochs} (upper bound), batch_size {d.batch_size}, lr {d.lr}, "
        f"weight_decay {d.weight_decay}, patience {d.patience}, loss {d.loss!r}. Data: the "
        "embedded synthetic shop (2,000 users, 1,000 items); the fit holds out each user's "
        "last training event for early stopping; metrics on the leave-one-out test cases, "
        "seen items filtered.", "",
        markdown_table(rows, list(rows[0]))])
    if a.write:
        write_section("fit_defaults", body)
    print(body)


if __name__ == "__main__":
    main()
