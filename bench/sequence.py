"""Sequence models (LSTM, GRU4Rec, SASRec) on real data: quality, training time, memory.

Full ranking on the test cases, mean over seeds, NDCG@10 and HR@10 with seen items filtered
and unfiltered. Each run trains in its own process (so its peak RSS is its own) under a
10-minute training budget, early-stopped on validation NDCG@10. Settings per dataset and
model are fixed below; they were chosen on validation only. Also times one training epoch
of the recurrent models on ML-1M (SASRec preprocessing, ~1M events). Writes the `sequence`
section of docs/benchmarks.md.

    python bench/sequence.py [--data-dir ../shared/data] [--datasets amazon-scientific,...]
                             [--models lstm,gru,sasrec] [--seeds 0,1,2] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from _report import SHARED_DATA, command, machine, markdown_table, write_section

BUDGET_S = 600.0  # training budget per run, validation included

# (registry name, folder under shared/data, split)
DATASETS = {
    "amazon-scientific": ("amazon-scientific-unisrec", "given"),
    "ml-100k": ("ml-100k", "loo"),
}
EPOCH_DATASET = ("ml-1m-sas", "ml-1m-sas", "given")

# Chosen on validation NDCG@10 (filtered) with prismrec.train.tune; the test set was not used.
_SCI_RNN = {"dim": 64, "dropout": 0.5, "hidden_dropout": 0.5}
_ML_RNN = {"dim": 128, "dropout": 0.2, "hidden_dropout": 0.2}
CONFIGS: dict[str, dict[str, tuple[dict, dict]]] = {
    "amazon-scientific": {
        "lstm": (_SCI_RNN, {"lr": 1e-3, "weight_decay": 0.1, "patience": 5}),
        "gru": (_SCI_RNN, {"lr": 1e-3, "weight_decay": 0.1, "patience": 5}),
        "sasrec": ({"dim": 64, "dropout": 0.5, "attn_dropout": 0.5, "max_len": 50},
                   {"lr": 1e-3, "weight_decay": 0.1, "patience": 5}),
    },
    "ml-100k": {
        "lstm": (_ML_RNN, {"lr": 1e-3, "weight_decay": 0.1, "patience": 5}),
        "gru": (_ML_RNN, {"lr": 1e-3, "weight_decay": 0.1, "patience": 5}),
        "sasrec": ({"dim": 64, "dropout": 0.2, "attn_dropout": 0.2, "max_len": 200},
                   {"lr": 1e-3, "weight_decay": 0.1, "patience": 5, "max_windows": 0}),
    },
}


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_one(dataset: str, model: str, seed: int, threads: int, data_dir: str) -> dict:
    """Train one model on one dataset with one seed; test metrics and timings."""
    from prismrec.data import load_dataset
    from prismrec.eval.evaluate import evaluate
    from prismrec.recommender import Recommender

    folder, split_name = DATASETS[dataset]
    ds = load_dataset(dataset, f"{data_dir}/{folder}")
    split = ds.split(split_name)
    model_cfg, train_cfg = CONFIGS[dataset][model]
    tc = {**train_cfg, "seed": seed, "threads": threads, "progress": False,
          "max_seconds": BUDGET_S}
    rec = Recommender(model, model_config=model_cfg, train_config=tc)
    rec.fit_split(split, ds.users, ds.items)
    r = rec.result_
    out = {"dataset": dataset, "model": model, "seed": seed, "best_epoch": r.best_epoch,
           "epochs": r.epochs, "stopped": r.stopped, "train_s": r.seconds,
           "to_best_s": r.seconds_to_best, "epoch_s": r.seconds_per_epoch,
           "valid_ndcg@10": r.best_metrics.get("ndcg@10", float("nan"))}
    for filt in (True, False):
        rep = evaluate(rec, split.test, ks=(10,), filter_seen=filt, n_bootstrap=0)
        tag = "f" if filt else "u"
        out[f"ndcg_{tag}"], out[f"hr_{tag}"] = rep.metrics["ndcg@10"], rep.metrics["hr@10"]
    out["rss_mb"] = _peak_rss_mb()
    return out


def epoch_one(model: str, threads: int, data_dir: str) -> dict:
    """Seconds for one training epoch (no validation) on ML-1M, SASRec preprocessing."""
    import torch

    from prismrec.data import load_dataset
    from prismrec.models import MODELS
    from prismrec.train import TrainConfig, Trainer

    name, folder, split_name = EPOCH_DATASET
    ds = load_dataset(name, f"{data_dir}/{folder}")
    train = ds.split(split_name).train
    model_cfg, train_cfg = CONFIGS["ml-100k"][model]
    torch.manual_seed(0)
    net = MODELS[model](len(ds.items), model_cfg)
    cfg = TrainConfig(**{**train_cfg, "epochs": 1, "threads": threads, "progress": False})
    t0 = time.perf_counter()
    r = Trainer(cfg).fit(net, train)
    return {"model": model, "events": int(train.n_events), "epoch_s": time.perf_counter() - t0,
            "train_epoch_s": r.seconds_per_epoch, "loss": r.history[0]["loss"],
            "rss_mb": _peak_rss_mb()}


def _child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(SHARED_DATA))
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--models", default="lstm,gru,sasrec")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epoch-models", default="lstm,gru,sasrec",
                    help="models to time for one ML-1M epoch ('' to skip)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--one", nargs=3, metavar=("DATASET", "MODEL", "SEED"), help=argparse.SUPPRESS)
    ap.add_argument("--epoch", metavar="MODEL", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        d, m, s = args.one
        print(json.dumps(run_one(d, m, int(s), args.threads, args.data_dir)))
        return
    if args.epoch:
        print(json.dumps(epoch_one(args.epoch, args.threads, args.data_dir)))
        return

    common = ["--threads", str(args.threads), "--data-dir", args.data_dir]
    rows = []
    for dataset in args.datasets.split(","):
        for model in args.models.split(","):
            runs = []
            for seed in args.seeds.split(","):
                r = _child(["--one", dataset, model, seed, *common])
                print(json.dumps(r), file=sys.stderr, flush=True)
                runs.append(r)

            def mean(key, runs=runs):
                return float(np.mean([r[key] for r in runs]))

            rows.append({
                "dataset": dataset, "model": model, "seeds": len(runs),
                "NDCG@10 filtered": mean("ndcg_f"), "HR@10 filtered": mean("hr_f"),
                "NDCG@10 unfiltered": mean("ndcg_u"), "HR@10 unfiltered": mean("hr_u"),
                "± NDCG@10 f (sd)": float(np.std([r["ndcg_f"] for r in runs])),
                "best epoch": mean("best_epoch"), "s to best": mean("to_best_s"),
                "s/epoch": mean("epoch_s"), "train s": mean("train_s"),
                "peak RSS MB": max(r["rss_mb"] for r in runs),
            })
    epochs = []
    for model in filter(None, args.epoch_models.split(",")):
        r = _child(["--epoch", model, *common])
        print(json.dumps(r), file=sys.stderr, flush=True)
        epochs.append({"model": model, "events": r["events"], "epoch s": r["train_epoch_s"],
                       "loss": r["loss"], "peak RSS MB": r["rss_mb"]})

    cols = ["dataset", "model", "NDCG@10 filtered", "HR@10 filtered", "NDCG@10 unfiltered",
            "HR@10 unfiltered", "± NDCG@10 f (sd)", "best epoch", "s to best", "s/epoch",
            "train s", "peak RSS MB"]
    body = [f"Machine: {machine()}; torch threads per run: {args.threads}.",
            f"Command: `{command()}`", "",
            f"Test set, full ranking, mean of {len(args.seeds.split(','))} seeds; training "
            f"budget {BUDGET_S:.0f} s per run (validation included), early stopping on "
            "validation NDCG@10 (filtered).", "", markdown_table(rows, cols)]
    if epochs:
        body += ["", "One training epoch on ml-1m-sas train/input.txt (full softmax over "
                 "3416 items, ml-100k settings):", "",
                 markdown_table(epochs, ["model", "events", "epoch s", "loss", "peak RSS MB"])]
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        write_section("sequence", text)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
