"""Sequence models (LSTM, GRU4Rec, SASRec) on real data: quality, training time, memory.

Full ranking on the test cases, mean over seeds, NDCG@10 and HR@10 with seen items filtered
and unfiltered. Each run trains in its own process (so its peak RSS is its own), early-stopped
on validation NDCG@10, under a 10-minute budget of process CPU time (wall time is reported
too; on a machine shared with other work it overstates the cost). Settings per dataset and
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
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from _report import SHARED_DATA, command, machine, markdown_table, write_section

BUDGET_S = 600.0  # CPU seconds to the best epoch must stay under this (validation included)
WALL_LIMIT_S = 3 * BUDGET_S  # hard stop in wall time, for a machine shared with other work

# (registry name, folder under shared/data, split)
DATASETS = {
    "amazon-scientific": ("amazon-scientific-unisrec", "given"),
    "ml-100k": ("ml-100k", "loo"),
}
EPOCH_DATASET = ("ml-1m-sas", "ml-1m-sas", "given")

# Chosen on validation NDCG@10 (filtered) in a small manual search; the test set was not
# used for choosing. "+text" adds a projected all-MiniLM-L6-v2 vector of each item's text
# (title, categories, brand) to its ID embedding (embedding="id+text").
# exclude_seen: the softmax leaves out the items the user already had, as the filtered
# ranking does (a small gain on validation for GRU and SASRec).
_SCI_RNN = ({"dim": 64, "dropout": 0.5, "hidden_dropout": 0.5},
            {"lr": 2e-3, "batch_size": 64, "patience": 8, "exclude_seen": 50})
_SCI_SAS = {"dim": 64, "dropout": 0.5, "attn_dropout": 0.5, "max_len": 50}
_SCI_SAS_TRAIN = {"lr": 1e-3, "batch_size": 64, "patience": 10}
_ML_RNN = ({"dim": 64, "dropout": 0.3, "hidden_dropout": 0.3},
           {"lr": 2e-3, "batch_size": 64, "patience": 8})
CONFIGS: dict[str, dict[str, tuple[dict, dict]]] = {
    "amazon-scientific": {
        "lstm": _SCI_RNN,
        "gru": _SCI_RNN,
        "sasrec": (_SCI_SAS, {**_SCI_SAS_TRAIN, "exclude_seen": 50}),
        "sasrec+text": ({**_SCI_SAS, "embedding": "id+text", "id_dropout": 0.1},
                        _SCI_SAS_TRAIN),
    },
    "ml-100k": {
        "lstm": _ML_RNN,
        "gru": _ML_RNN,
        "sasrec": ({"dim": 64, "dropout": 0.3, "attn_dropout": 0.3, "max_len": 200},
                   {"lr": 1e-3, "batch_size": 64, "patience": 8}),
    },
}
# "+blend" mixes the model's scores with EASE item-item scores of the recency-weighted history
# (Recommender(blend=True)); EASE lam, the recency decay and the weight are chosen on
# validation after training, the sequence model's settings are the unblended ones.
# "+refit": after validation has chosen the epochs (and the blend its weights), a fresh
# model trains on train + validation targets for that many epochs (fit_split(refit=True));
# the cost columns then include both runs.
for _models in CONFIGS.values():
    for _name in list(_models):
        _models[f"{_name}+blend"] = _models[_name]
    for _name in list(_models):
        _models[f"{_name}+refit"] = _models[_name]
TEXT_CACHE = Path(tempfile.gettempdir()) / "prismrec-bench-text"


def text_vectors(dataset: str, data_dir: str) -> Path:
    """Item text vectors in item-vocabulary order, encoded once and kept in TEXT_CACHE."""
    from prismrec.data import load_dataset
    from prismrec.text import encode_catalog

    out = TEXT_CACHE / f"{dataset}.npy"
    if not out.exists():
        folder, _ = DATASETS[dataset]
        ds = load_dataset(dataset, f"{data_dir}/{folder}")
        vecs = encode_catalog(ds.catalog, cache_dir=TEXT_CACHE / "cache", progress=False)
        row = {item: i for i, item in enumerate(ds.catalog.ids)}
        TEXT_CACHE.mkdir(parents=True, exist_ok=True)
        np.save(out, np.stack([vecs[row[i]] for i in ds.items]))
    return out


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
          "max_seconds": WALL_LIMIT_S}
    base, *parts = model.split("+")
    text = np.load(text_vectors(dataset, data_dir)) if "text" in parts else None
    rec = Recommender(base, model_config=model_cfg, train_config=tc,
                      blend=True if "blend" in parts else None)
    t0 = time.perf_counter()
    rec.fit_split(split, ds.users, ds.items, text_vectors=text, refit="refit" in parts)
    fit_s = time.perf_counter() - t0
    r, rr = rec.result_, rec.refit_result_
    out = {"dataset": dataset, "model": model, "seed": seed, "best_epoch": r.best_epoch,
           "epochs": r.epochs, "stopped": r.stopped, "train_s": r.seconds,
           "to_best_s": r.seconds_to_best, "cpu_to_best_s": r.cpu_seconds_to_best,
           "epoch_s": r.seconds_per_epoch,
           "valid_ndcg@10": r.best_metrics.get("ndcg@10", float("nan"))}
    if rr is not None:  # the refit is part of the cost: selection to its best epoch + refit
        out |= {"train_s": r.seconds + rr.seconds,
                "to_best_s": r.seconds_to_best + rr.seconds,
                "cpu_to_best_s": r.cpu_seconds_to_best + rr.cpu_seconds_to_best,
                "refit_s": rr.seconds, "refit_cpu_s": rr.cpu_seconds_to_best}
    if rec.blend_ is not None:  # the blend's choice; valid_ndcg@10 above is the model alone
        b = rec.blend_
        out |= {"blend_lam": b.lam, "blend_decay": b.decay, "blend_weight": b.weight,
                "blend_text_alpha": b.text_alpha,
                "blend_valid_ndcg@10": b.best,
                "blend_s": fit_s - r.seconds}  # fitting EASE and choosing the blend
    for filt in (True, False):
        rep = evaluate(rec, split.test, ks=(10,), filter_seen=filt, n_bootstrap=0)
        tag = "f" if filt else "u"
        out[f"ndcg_{tag}"], out[f"hr_{tag}"] = rep.metrics["ndcg@10"], rep.metrics["hr@10"]
    out["rss_mb"] = _peak_rss_mb()
    return out


def epoch_one(model: str, threads: int, data_dir: str) -> dict:
    """Seconds for one training epoch (no validation) on ML-1M, SASRec preprocessing.

    Default model and training settings (dim 64, batch 128, full softmax); SASRec trains on
    every window of its histories (max_windows=0) so that it, too, sees every event.
    """
    import torch

    from prismrec.data import load_dataset
    from prismrec.models import MODELS
    from prismrec.train import TrainConfig, Trainer

    name, folder, split_name = EPOCH_DATASET
    ds = load_dataset(name, f"{data_dir}/{folder}")
    train = ds.split(split_name).train
    torch.manual_seed(0)
    net = MODELS[model](len(ds.items))
    cfg = TrainConfig(epochs=1, threads=threads, progress=False, batch_size=128, loss="ce",
                      max_windows=0 if model == "sasrec" else 1)
    r = Trainer(cfg).fit(net, train)
    return {"model": model, "events": int(train.n_events), "train_epoch_s": r.seconds_per_epoch,
            "loss": r.history[0]["loss"], "rss_mb": _peak_rss_mb()}


def _child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(SHARED_DATA))
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--models", default="lstm,gru,sasrec,sasrec+text")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--threads", type=int, default=2, help="torch threads per run")
    ap.add_argument("--jobs", type=int, default=1, help="runs at the same time")
    ap.add_argument("--epoch-models", default="lstm,gru,sasrec",
                    help="models to time for one ML-1M epoch ('' to skip)")
    ap.add_argument("--epoch-threads", type=int,
                    help="torch threads for the ML-1M epoch timing (default: --threads)")
    ap.add_argument("--results", metavar="JSONL",
                    help="keep each run's result in this file and skip runs already in it "
                         "(resume a long benchmark)")
    ap.add_argument("--recorded-only", action="store_true",
                    help="with --results: report only the runs already recorded there")
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
    datasets = args.datasets.split(",")
    jobs = []
    for dataset in datasets:
        for model in args.models.split(","):
            if model not in CONFIGS[dataset]:
                continue
            if "+text" in model:
                text_vectors(dataset, args.data_dir)  # encode once, before the runs
            jobs += [["--one", dataset, model, seed, *common] for seed in args.seeds.split(",")]

    done = {}
    if args.results and Path(args.results).exists():
        for line in Path(args.results).read_text().splitlines():
            r = json.loads(line)
            done[(r["dataset"], r["model"], str(r["seed"]))] = r
    if args.recorded_only:
        jobs = [job for job in jobs if tuple(job[1:4]) in done]

    def launch(job):
        key = tuple(job[1:4])
        if key in done:
            return done[key]
        r = _child(job)
        print(json.dumps(r), file=sys.stderr, flush=True)
        if args.results:
            with open(args.results, "a") as f:
                f.write(json.dumps(r) + "\n")
        return r

    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(launch, jobs))
    rows = []
    for dataset in datasets:
        for model in args.models.split(","):
            runs = [r for r in results if r["dataset"] == dataset and r["model"] == model]
            if not runs:
                continue

            def mean(key, runs=runs):
                return float(np.mean([r[key] for r in runs]))

            rows.append({
                "dataset": dataset, "model": model, "seeds": len(runs),
                "NDCG@10 filtered": mean("ndcg_f"), "HR@10 filtered": mean("hr_f"),
                "NDCG@10 unfiltered": mean("ndcg_u"), "HR@10 unfiltered": mean("hr_u"),
                "sd NDCG@10 f": float(np.std([r["ndcg_f"] for r in runs])),
                "best epoch": mean("best_epoch"), "s to best": mean("to_best_s"),
                "CPU s to best": mean("cpu_to_best_s"),
                "s/epoch": mean("epoch_s"), "train s": mean("train_s"),
                "peak RSS MB": max(r["rss_mb"] for r in runs),
                "stopped": ", ".join(f"{why} {n}" for why, n in sorted(
                    Counter(r["stopped"] for r in runs).items())),
            })
    epochs = []
    epoch_threads = args.epoch_threads or args.threads
    for model in filter(None, args.epoch_models.split(",")):
        r = _child(["--epoch", model, "--threads", str(epoch_threads), "--data-dir",
                    args.data_dir])
        print(json.dumps(r), file=sys.stderr, flush=True)
        epochs.append({"model": model, "events": r["events"], "epoch s": r["train_epoch_s"],
                       "loss": r["loss"], "peak RSS MB": r["rss_mb"]})

    cols = ["dataset", "model", "seeds", "NDCG@10 filtered", "HR@10 filtered",
            "NDCG@10 unfiltered", "HR@10 unfiltered", "sd NDCG@10 f", "best epoch", "stopped",
            "s to best", "CPU s to best", "s/epoch", "train s", "peak RSS MB"]
    body = ["## Sequence models: LSTM, GRU4Rec, SASRec", "",
            f"Machine: {machine()}; torch threads per run: {args.threads}, {args.jobs} "
            "run(s) at a time; the machine was shared with other work, so times are "
            "pessimistic.",
            f"Command: `{command()}`", "",
            "Test set, full ranking, mean over the seeds in column `seeds`; early "
            "stopping on validation NDCG@10 (filtered). Budget: the process CPU time to the "
            f"best epoch (validation included) must stay under {BUDGET_S:.0f} s, so each "
            "result is reached within 10 minutes even on one dedicated core; hard stop at "
            f"{WALL_LIMIT_S:.0f} s of wall time.", "",
            "Model suffixes: `+text` adds a projected all-MiniLM-L6-v2 vector of each item's "
            "text to its ID embedding; `+blend` mixes the model's scores with EASE item-item "
            "scores of the recency-weighted history (for a text model EASE also gets the text "
            "cosine as side information), every blend setting chosen on validation; `+refit` "
            "trains a fresh model on train + validation targets for the number of epochs "
            "validation chose (`fit_split(refit=True)`): the test cases stay unseen, and the "
            "time columns add both trainings. `stopped`: how many runs ended by patience "
            "and how many by the wall-clock stop (`time`: still improving, so an "
            "underestimate).", "", markdown_table(rows, cols)]
    if epochs:
        body += ["", "One training epoch on ml-1m-sas train/input.txt (full softmax over "
                 "3416 items, dim 64 (the model default), batch 128; SASRec on every 50-event "
                 f"window), {epoch_threads} torch thread(s):", "",
                 markdown_table(epochs, ["model", "events", "epoch s", "loss", "peak RSS MB"])]
    text = "\n".join(body)
    print(text)
    if not args.no_write:
        write_section("sequence", text)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
