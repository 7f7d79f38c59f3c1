"""MovieLens-1M the way the field reports it: leave-one-out on complete sequences, full ranking.

Data: ``ml-1m-sas`` (SASRec's preprocessing, gSASRec's files) loaded with
``protocol="loo"``: each user's ``train/input.txt`` row is the whole sequence, its last item
the test target, its second-to-last the validation target, all 6,040 users in both. Every
setting was chosen on validation NDCG@10 (seen items filtered); the test cases were scored
only for the table. Each run trains in its own process (so its peak RSS is its own) and
appends its result to a JSON-lines file, so long benchmarks resume and runs can be spread
over time; the report is assembled from that file and written to the `ml1m` section of
docs/benchmarks.md.

    python bench/ml1m.py --one CONFIG SEED --results R.jsonl [--threads 1]   # one run
    python bench/ml1m.py --results R.jsonl [--configs a,b] [--seeds 0,1,2]   # runs + report
    python bench/ml1m.py --results R.jsonl --recorded-only                  # report only
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from _report import SHARED_DATA, command, machine, markdown_table, peak_rss_mb, write_section

# name -> (model, model settings, training settings). "sas50" is SASRec with the library's
# defaults; the others change only what their name says. Screening (seed 0, validation only,
# compared at equal wall time from launch, on the same shared machine): "sas200-allwin"
# matched "sas200" (0.0848 after 2 epochs / 7.2 min vs 0.0861 after 3 epochs / 7.7 min) at
# 1.7-1.9x the epoch cost and was stopped there; "sas200-b16" matched it too (0.1471 after 8
# epochs / 27.7 min vs 0.1440 and 0.1498 at 26.3 and 29.7 min) and was stopped; "sas200" (the
# trainer's batch and windows) went on to the seeds.
_SAS200 = {"max_len": 200, "dropout": 0.2, "attn_dropout": 0.2}
_XS_DECAY = {"exclude_seen": 200, "lr_decay": 0.3, "lr_patience": 2, "patience": 6}
CONFIGS: dict[str, tuple[str, dict, dict]] = {
    "sas50": ("sasrec", {}, {}),
    "sas200": ("sasrec", _SAS200, {}),
    "sas200-allwin": ("sasrec", _SAS200, {"max_windows": 0}),
    "sas200-d128": ("sasrec", {**_SAS200, "dim": 128}, {}),
    "sas200-lr1e-3": ("sasrec", _SAS200, {"lr": 1e-3, "batch_size": 128}),
    "sas200-b16": ("sasrec", _SAS200, {"batch_size": 16}),
    # training leaves each position's window (up to 200 inputs) out of its softmax, as the
    # filtered evaluation leaves seen items out of the ranking
    "sas200-xs": ("sasrec", _SAS200, {"exclude_seen": 200}),
    # the same, and at a plateau the learning rate drops to 0.3x (from the best weights)
    # after 2 epochs without improvement; stops after 6
    "sas200-xs-decay": ("sasrec", _SAS200, _XS_DECAY),
    # the same training, then the EASE blend over the grid in BLENDED: its penalty,
    # recency decay and weight chosen on the validation cases, weight 0 (the sequence model
    # alone) among them
    "sas200-xs-decay+ease": ("sasrec", _SAS200, _XS_DECAY),
    "gru": ("gru", {"dropout": 0.3, "hidden_dropout": 0.3}, {"lr": 2e-3, "patience": 8}),
    "lstm": ("lstm", {"dropout": 0.3, "hidden_dropout": 0.3}, {"lr": 2e-3, "patience": 8}),
}

# the blend's grid for blended configs: ML-1M is dense, so larger penalties than the
# library's default grid, and weights in finer steps near 0
BLENDED = {"sas200-xs-decay+ease": {"lams": [200, 500, 1000, 2000], "decays": [1.0, 0.8, 0.6],
                                    "weights": [0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]}}

TARGET = 0.19  # issue 19: test NDCG@10 (filtered), mean of 3 seeds

# Published ML-1M leave-one-out figures (seen items filtered, full ranking), as quoted in
# issue 19; an empty HR@10 is one the issue does not quote.
ANCHORS = [
    ("gSASRec (Petrov & Macdonald, RecSys'23)", "0.1726", "0.3003"),
    ("SASRec, full cross-entropy (Klenitskiy & Vasilev, RecSys'23)", "~0.18", ""),
    ("FuXi-alpha (Ye et al., 2025)", "0.1813", ""),
    ("HSTU-large (Zhai et al., ICML'24)", "0.1893", "0.3294"),
    ("SASRec, 1 negative + BCE", "0.1259", ""),
]


def run_one(config: str, seed: int, threads: int, data_dir: str,
            max_seconds: float | None) -> dict:
    """Train one configuration with one seed; validation and test metrics, costs."""
    from prismrec.data import load_dataset
    from prismrec.eval.evaluate import evaluate
    from prismrec.recommender import Recommender

    ds = load_dataset("ml-1m-sas", f"{data_dir}/ml-1m-sas", protocol="loo")
    split = ds.split("loo")
    model, model_cfg, train_cfg = CONFIGS[config]
    tc = {**train_cfg, "seed": seed, "threads": threads, "progress": False,
          "max_seconds": max_seconds}
    load = [os.getloadavg()[0]]
    rec = Recommender(model, model_config=model_cfg, train_config=tc,
                      blend=BLENDED.get(config, False))
    rec.fit_split(split, ds.users, ds.items)
    r = rec.result_
    out = {"config": config, "model": model, "seed": seed, "best_epoch": r.best_epoch,
           "epochs": r.epochs, "stopped": r.stopped, "max_seconds": max_seconds,
           "train_s": r.seconds, "to_best_s": r.seconds_to_best,
           "cpu_to_best_s": r.cpu_seconds_to_best, "epoch_s": r.seconds_per_epoch,
           "valid_ndcg@10": r.best_metrics.get("ndcg@10", float("nan")),
           "valid_curve": [round(h.get("valid_ndcg@10", float("nan")), 4) for h in r.history]}
    for filt in (True, False):
        rep = evaluate(rec, split.test, ks=(10,), filter_seen=filt, n_bootstrap=0)
        tag = "f" if filt else "u"
        out[f"ndcg_{tag}"], out[f"hr_{tag}"] = rep.metrics["ndcg@10"], rep.metrics["hr@10"]
    if rec.blend_ is not None:  # the blend's choice, then the sequence model alone on test
        b = rec.blend_
        out["blend"] = {"lam": b.lam, "decay": b.decay, "weight": b.weight}
        out["valid_seq_ndcg@10"], out["valid_ndcg@10"] = out["valid_ndcg@10"], b.best
        rec.blend_, rec.item_item_ = None, None
        rep = evaluate(rec, split.test, ks=(10,), filter_seen=True, n_bootstrap=0)
        out["ndcg_f_seq"], out["hr_f_seq"] = rep.metrics["ndcg@10"], rep.metrics["hr@10"]
    out["rss_mb"] = peak_rss_mb()
    out["load"] = [*load, os.getloadavg()[0]]
    return out


def _recorded(path: str | None) -> list[dict]:
    if not path or not Path(path).exists():
        return []
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _append(path: str | None, row: dict) -> None:
    if path:
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


def report(runs: list[dict], threads: int, load_note: str) -> str:
    rows = []
    for config in dict.fromkeys(r["config"] for r in runs):
        rs = [r for r in runs if r["config"] == config]

        def mean(key, rs=rs):
            return float(np.mean([r[key] for r in rs]))

        model, model_cfg, train_cfg = CONFIGS[config]
        rows.append({
            "config": config, "model": model,
            "settings": json.dumps({**model_cfg, **train_cfg}).replace("|", "/"),
            "seeds": f"{len(rs)} ({','.join(str(r['seed']) for r in rs)})",
            "valid NDCG@10": mean("valid_ndcg@10"),
            "NDCG@10 filtered": mean("ndcg_f"), "HR@10 filtered": mean("hr_f"),
            "sd NDCG@10": float(np.std([r["ndcg_f"] for r in rs])),
            "NDCG@10 unfiltered": mean("ndcg_u"), "HR@10 unfiltered": mean("hr_u"),
            "best epoch": mean("best_epoch"), "stopped": ", ".join(
                f"{why} {n}" for why, n in sorted(Counter(r["stopped"] for r in rs).items()))
            + "".join(sorted({f" (cap {r['max_seconds']:.0f} s)" for r in rs
                              if r["stopped"] == "time"})),
            "s/epoch": mean("epoch_s"), "s to best": mean("to_best_s"),
            "CPU s to best": mean("cpu_to_best_s"),
            "peak RSS MB": max(r["rss_mb"] for r in rs),
            **({"valid seq alone": mean("valid_seq_ndcg@10"), "test seq alone":
                mean("ndcg_f_seq"), "blend lam/decay/a": "; ".join(
                    f"{r['blend']['lam']:g}/{r['blend']['decay']:g}/{r['blend']['weight']:g}"
                    for r in rs)} if config in BLENDED else {})})
    cols = ["config", "model", "settings", "seeds", "valid NDCG@10", "NDCG@10 filtered",
            "HR@10 filtered", "sd NDCG@10", "NDCG@10 unfiltered", "HR@10 unfiltered",
            "best epoch", "stopped", "s/epoch", "s to best", "CPU s to best", "peak RSS MB"]
    if any(r["config"] in BLENDED for r in rows):
        cols[5:5] = ["valid seq alone", "test seq alone", "blend lam/decay/a"]
    met = [r["config"] for r in rows if r["NDCG@10 filtered"] >= TARGET
           and r["seeds"].startswith("3 ")]
    missing = [m for m in ("lstm", "gru", "sasrec") if m not in {r["model"] for r in runs}]
    loads = [v for r in runs for v in r.get("load", [])]
    load = (f"1-minute load average {min(loads):.1f}-{max(loads):.1f} at the runs' starts "
            "and ends" if loads else "load average not recorded by these runs")
    load = f"{load}; {load_note}" if load_note else load
    anchors = [{"published model": a, "NDCG@10": n, "HR@10": h or "not quoted"}
               for a, n, h in ANCHORS]
    return "\n".join([
        "## MovieLens-1M, leave-one-out (the field's protocol)", "",
        f"Machine: {machine()}; torch threads per run: {threads}; runs under `nice -n 10`, "
        f"up to three at a time (this machine has 2 cores), beside other work ({load}), so "
        "wall times (`s/epoch`, `s to best`) are pessimistic; `CPU s to best` is the "
        "training process's CPU time to the end of its best epoch's validation.",
        f"Command: `{command()}` (each run: `python bench/ml1m.py --one CONFIG SEED --results "
        "R.jsonl --threads 1 --max-seconds S`).", "",
        "Data: `ml-1m-sas` with `protocol=\"loo\"` (6,040 users, 3,416 items): each user's "
        "`train/input.txt` row is the whole sequence; its last item is the test target and "
        "its second-to-last the validation target, every user in both. Full ranking over all "
        "items; `filtered` removes the user's earlier items (ML-1M has no repeats). Settings "
        "were compared on validation NDCG@10 only; the test columns are printed for the "
        "record. `stopped`: `patience` = early stopping ended the run; `time` = the run hit "
        "its wall-clock cap (`--max-seconds`) before early stopping ended it, so its figures "
        "are a lower bound of what the setting reaches. Rows with fewer than 3 seeds say so in "
        "`seeds`.", "",
        *(["A `+ease` row trains exactly as the row it extends, then mixes its scores with "
           "EASE's (`Recommender(blend=...)`, its grid in bench/ml1m.py): the penalty, the "
           "recency decay of the history and the weight `a` (0 = the sequence model alone) "
           "were chosen per seed on the validation cases. `valid seq alone` and `test seq "
           "alone` are that run's sequence model without EASE; `valid NDCG@10` and the test "
           "columns are the blend.", ""] if any(r["config"] in BLENDED for r in rows) else []),
        markdown_table(rows, cols), "",
        *([f"Not measured here: {', '.join(missing)} (no recorded run)."] if missing else []),
        "", f"Issue 19's target, test NDCG@10 >= {TARGET} filtered as a mean of 3 seeds: "
        + (f"met by {', '.join(met)}." if met else "not met by any row above."),
        "", "Validation NDCG@10 per epoch:", "",
        *[f"- {r['config']} seed {r['seed']}: {' '.join(f'{v:.4f}' for v in r['valid_curve'])}"
          for r in runs], "",
        "Published anchors (standard leave-one-out on the same SASRec preprocessing, seen "
        "items filtered, full ranking, as quoted in issue 19):", "",
        markdown_table(anchors, ["published model", "NDCG@10", "HR@10"]), "",
        "How our protocol differs from theirs: the `train/input.txt` rows we have end two "
        "items before each user's true end (for the 512 gSASRec validation users three; "
        "those rows lack the validation input's last item too). So every sequence here is "
        "two items shorter than in the papers (three for 512 users), the test target is the "
        "user's third-to-last item of the original data instead of the last, the validation "
        "target the fourth-to-last instead of the second-to-last (fourth- and fifth-to-last "
        "for the 512), and 12,592 interactions (the last two per user, three for the 512) "
        "are unseen by every model here. The item set and "
        "preprocessing are the same. The papers' training budgets and model selection differ "
        "from ours and among themselves, so the anchors locate our numbers; they are not a "
        "ranking on identical data.",
    ])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(SHARED_DATA))
    ap.add_argument("--configs", default="sas200,gru,lstm")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run")
    ap.add_argument("--max-seconds", type=float, default=3600.0,
                    help="wall-clock cap per training run (a capped run says `time`)")
    ap.add_argument("--results", metavar="JSONL", required=True,
                    help="each run's result is appended here; runs already in it are skipped")
    ap.add_argument("--recorded-only", action="store_true",
                    help="report the runs recorded in --results (for --configs) and run none")
    ap.add_argument("--load-note", default="",
                    help="what else is known about the machine's load, for the report")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--one", nargs=2, metavar=("CONFIG", "SEED"),
                    help="train one configuration with one seed and record it")
    args = ap.parse_args()
    unknown = [c for c in ([args.one[0]] if args.one else args.configs.split(","))
               if c not in CONFIGS]
    if unknown:
        ap.error(f"unknown config(s) {unknown}; known: {sorted(CONFIGS)}")
    if args.one:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
        t0 = time.time()
        row = run_one(args.one[0], int(args.one[1]), args.threads, args.data_dir,
                      args.max_seconds)
        row["wall_s"] = time.time() - t0
        _append(args.results, row)
        print(json.dumps(row))
        return

    configs, seeds = args.configs.split(","), [int(s) for s in args.seeds.split(",")]
    done = {(r["config"], r["seed"]) for r in _recorded(args.results)}
    if not args.recorded_only:
        for config in configs:
            for seed in seeds:
                if (config, seed) in done:
                    continue
                subprocess.run([sys.executable, __file__, "--one", config, str(seed),
                                "--results", args.results, "--threads", str(args.threads),
                                "--max-seconds", str(args.max_seconds),
                                "--data-dir", args.data_dir], check=True)
    runs = [r for r in _recorded(args.results) if r["config"] in configs]
    if not runs:
        sys.exit(f"no runs of {configs} recorded in {args.results}")
    text = report(runs, args.threads, args.load_note)
    print(text)
    if not args.no_write:
        write_section("ml1m", text)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
