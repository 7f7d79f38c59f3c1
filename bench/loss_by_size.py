"""Which loss ``TrainConfig(loss="auto")`` should pick at a catalogue size: epoch time and
quality of the full softmax vs the sampled softmax (logQ) on the synthetic shop.

For each size: a GRU (dim 64, batch 128 users, 1 torch thread unless --threads) trained with
the full softmax and with the sampled softmax (4,096 popularity negatives), each with early
stopping on the validation cases (patience 2, at most --max-epochs), then scored on the
leave-one-out test cases (full ranking, seen items filtered). Writes the `loss_by_size`
section of docs/benchmarks.md (the 100,000-item comparison is in section `scale`).

    python bench/loss_by_size.py [--items 20000] [--users 4000] [--max-epochs 6] [--write]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from _report import command, machine, markdown_table, peak_rss_mb, write_section

from prismrec import Recommender
from prismrec.data.synthetic import generate
from prismrec.eval import evaluate
from prismrec.train.config import SAMPLED_ABOVE

LOSSES = {"full softmax (ce)": {"loss": "ce"},
          "sampled (4,096 popularity negatives, logQ)": {"loss": "sampled",
                                                         "n_negatives": 4096}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", default="20000")
    ap.add_argument("--users", type=int, default=4000)
    ap.add_argument("--max-epochs", type=int, default=6)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    for n_items in (int(x) for x in a.items.split(",")):
        data = generate(n_users=a.users, n_items=n_items, seed=0).to_dataset("synthetic")
        split = data.split("loo")
        for name, loss in LOSSES.items():
            load0 = os.getloadavg()[0]
            c0, t0 = time.process_time(), time.perf_counter()
            rec = Recommender("gru", model_config={"dim": 64}, train_config={
                **loss, "batch_size": 128, "epochs": a.max_epochs, "patience": 2,
                "progress": False, "threads": a.threads})
            rec.fit_split(split, data.users, data.items)
            cpu, wall = time.process_time() - c0, time.perf_counter() - t0
            r = rec.result_
            rep = evaluate(rec, split.test, ks=(10,), n_bootstrap=0)
            rows.append({"items": n_items, "events": data.sequences.n_events, "loss": name,
                         "epochs": f"best {r.best_epoch} of {r.epochs} ({r.stopped})",
                         "epoch s": round(r.seconds_per_epoch, 1),
                         "valid NDCG@10": round(r.best_metrics.get("ndcg@10", 0.0), 4),
                         "test NDCG@10": round(rep.metrics["ndcg@10"], 4),
                         "test HR@10": round(rep.metrics["hr@10"], 4),
                         "train CPU s": round(cpu, 1), "train wall s": round(wall, 1),
                         "load avg": f"{load0:.1f}-{os.getloadavg()[0]:.1f}"})
            print(rows[-1], flush=True)
    body = "\n".join([
        "## Loss by catalogue size (`TrainConfig.loss = \"auto\"`)", "",
        f"`{command()}` on {machine()}; peak RSS {peak_rss_mb():.0f} MB. The machine was "
        "shared with other engineers' jobs ('load avg' at the start and end of each run; above "
        "2 means competition for the 2 cores, so wall seconds overstate the cost; compare CPU "
        "seconds).", "",
        f"`loss=\"auto\"` uses the full softmax up to {SAMPLED_ABOVE:,} items and the sampled "
        "softmax above. Synthetic shop, GRU dim 64, batch 128 users, early stopping on "
        "validation NDCG@10 (patience 2). 'epoch s': mean training time of an epoch, "
        "validation excluded.", "",
        markdown_table(rows, list(rows[0]))])
    if a.write:
        write_section("loss_by_size", body)
    print(body)


if __name__ == "__main__":
    main()
