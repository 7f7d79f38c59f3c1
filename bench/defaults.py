"""The default model (``Recommender()``, ``prismrec train`` without flags) against the baselines.

For every real dataset the loaders read: the default model's validation NDCG@10 (filtered)
next to MostPopular, ItemKNN and EASE (each with its settings chosen on the same validation
cases), all scored by ``prismrec.eval.evaluate`` on the split's validation cases; the test
NDCG@10 beside it. Each dataset's result is appended to ``--results`` as it finishes, so a
long run can be resumed and a partial table written. Writes the `defaults` section of
docs/benchmarks.md.

    python bench/defaults.py [--datasets ml-100k,...] [--threads 1] [--results FILE]
                             [--checkpoint amazon-scientific=DIR] [--parts baselines,default]
                             [--recorded-only]

``--checkpoint NAME=DIR`` scores a model that ``prismrec train`` (no model flags) saved on
that dataset's default split instead of training it again here.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from _report import SHARED_DATA, command, machine, markdown_table, peak_rss_mb, write_section
from baselines import DATASETS

from prismrec.data import load_dataset
from prismrec.eval import evaluate
from prismrec.eval.runner import run_baseline
from prismrec.recommender import Recommender

BASELINE_NAMES = ("pop", "itemknn", "ease")


PARTS = ("baselines", "default")


def run_part(part: str, name: str, folder: str, split_name: str, data_dir: str, threads: int,
             checkpoint: str | None) -> dict:
    """One dataset's baselines, or its default model: a row of --results."""
    ds = load_dataset(name, f"{data_dir}/{folder}")
    sp = ds.split(split_name)
    row: dict = {"dataset": name, "part": part, "split": sp.name, "items": len(ds.items),
                 "valid cases": len(sp.valid)}
    if part == "baselines":
        for model in BASELINE_NAMES:
            t0 = time.perf_counter()
            r = run_baseline(ds, model, split=sp, filter_seen=True, ks=(10,))
            row[f"{model} valid"] = max(v["ndcg@10"] for v in r.validation)
            row[f"{model} test"] = r.metrics["ndcg@10"]
            row[f"{model} chosen"] = r.config
            row[f"{model} s"] = time.perf_counter() - t0
            print(name, model, row[f"{model} valid"], flush=True)
        return row
    t0 = time.perf_counter()
    if checkpoint:
        rec = Recommender.load(checkpoint)
        row["trained by"] = f"prismrec train, checkpoint {checkpoint}"
        if rec.training_ is not None and rec.training_.split != sp.name:
            raise SystemExit(f"{checkpoint} was trained on split {rec.training_.split!r}, "
                             f"not {sp.name!r}")
    else:
        rec = Recommender(train_config={"threads": threads, "progress": False})
        rec.fit_split(sp, ds.users, ds.items, ds.catalog, histories=ds.sequences)
        row["trained by"] = "this script"
        row["choices"] = rec.choices_.to_dict()
    if not checkpoint:  # the whole fit: text encoding, training, the blend's choice
        row["fit s"] = time.perf_counter() - t0
    row["train s"] = rec.result_.seconds  # the sequence model's training alone
    row["default valid"] = evaluate(rec, sp.valid, ks=(10,), n_bootstrap=0).metrics["ndcg@10"]
    row["default test"] = evaluate(rec, sp.test, ks=(10,), n_bootstrap=0).metrics["ndcg@10"]
    row["model"] = rec.model_.name + ("+text" if rec.text_encoder_ else "")
    b = rec.blend_
    row["blend weight"] = None if b is None else b.weight
    row["alone valid"] = (rec.result_.best_metrics.get("ndcg@10") if b is None
                          else b.alone())
    row["best epoch"] = rec.result_.best_epoch
    row["rss MB"] = peak_rss_mb()
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(SHARED_DATA))
    ap.add_argument("--datasets", default=",".join(d for d, _, _ in DATASETS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--results", default="/tmp/prismrec-bench-defaults.jsonl",
                    help="one JSON line per finished dataset; datasets already there are "
                    "not run again")
    ap.add_argument("--checkpoint", action="append", default=[], metavar="NAME=DIR")
    ap.add_argument("--parts", default=",".join(PARTS),
                    help="baselines, default or both (a row needs both to be shown)")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--recorded-only", action="store_true",
                    help="run nothing: report the rows already in --results")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    checkpoints = dict(c.split("=", 1) for c in args.checkpoint)
    results = Path(args.results)

    def recorded() -> dict[str, dict]:  # re-read each time: other invocations add rows
        merged: dict[str, dict] = {}
        lines = results.read_text().splitlines() if results.exists() else []
        for line in lines:
            r = json.loads(line)
            merged.setdefault(r["dataset"], {"parts": set()}).update(r)
            merged[r["dataset"]]["parts"].update([r["part"]] if "part" in r else PARTS)
        return merged

    wanted = args.datasets.split(",")
    for name, folder, split in DATASETS:
        for part in args.parts.split(","):
            if (name in wanted and not args.recorded_only
                    and part not in recorded().get(name, {}).get("parts", ())):
                row = run_part(part, name, folder, split, args.data_dir, args.threads,
                               checkpoints.get(name))
                with results.open("a") as f:
                    f.write(json.dumps(row) + "\n")
    done = recorded()
    rows = []
    for name, _, _ in DATASETS:
        r = done.get(name)
        if r is None or "baselines" not in r["parts"]:
            continue
        best = max(BASELINE_NAMES, key=lambda m, r=r: r[f"{m} valid"])
        row = {**r, "pop": r["pop valid"], "itemknn": r["itemknn valid"],
               "ease": r["ease valid"], "best baseline": f"{best} {r[f'{best} valid']:.4f}",
               "best baseline test": r[f"{best} test"]}
        if "default" in r["parts"]:
            row |= {"default": r["default valid"], "sequence alone": r["alone valid"],
                    "default >= best": "yes" if r["default valid"] >= r[f"{best} valid"]
                    else "no",
                    "blend weight": "off" if r["blend weight"] is None else r["blend weight"],
                    "default test": r["default test"]}
        else:
            row |= {"default": "not run", "default >= best": "not run", "model": "-"}
        rows.append(row)
    cols = ["dataset", "split", "items", "valid cases", "model", "blend weight", "default",
            "sequence alone", "pop", "itemknn", "ease", "best baseline", "default >= best",
            "default test", "best baseline test", "best epoch", "train s", "fit s", "rss MB"]
    table = markdown_table(rows, cols)
    missing = [n for n in wanted if n not in done or "default" not in done[n]["parts"]]
    print(table)
    if args.no_write:
        return
    trained = "; ".join(f"{r['dataset']}: {r['trained by']}" for r in rows if "trained by" in r)
    write_section("defaults", f"""
## The default model against the baselines (validation)

Command: `{command()}` — machine: {machine()}; shared with other engineers' jobs (load
average 6-13 on 2 cores), so the wall-second columns overstate the cost: `train s` is the
sequence model's training, `fit s` the whole fit (text encoding, training, the blend's
choice; only for models this script trained). `rss MB`: peak RSS of the process that
scored the default model (and trained it, when this script did).

The default is `Recommender()` / `prismrec train` without model flags
(`prismrec.recommender._defaults`): SASRec with the settings of the best `sequence` row,
item text (all-MiniLM-L6-v2) when the catalogue has text, the EASE blend when the catalogue
has at most 10,000 items and fits in memory, no refit. All columns `default` to `ease` are
NDCG@10 with seen items filtered on the split's **validation** cases, computed by the same
`evaluate` call; each baseline's settings (grid of `prismrec evaluate`) and the blend's
weights were chosen on those cases, so every figure is optimistic in the same way.
`sequence alone` is the blend's validation NDCG@10 at weight 0 (the sequence model without
EASE, trainer's ranking). `default test` and `best baseline test` are the test NDCG@10
(filtered) of the same models. Models: {trained}. Rows are read back from `--results`, where
each dataset's parts were appended when they finished: separate invocations of this script
(`--datasets NAME --parts baselines|default --threads 1 --results FILE`, in parallel), and
for a checkpoint row, the model of `prismrec train --dataset NAME --data-dir DIR --threads 1
--out CKPT` (no model flags) scored with `--checkpoint NAME=CKPT`.
{"Default model not run (did not finish in the time available): " + ", ".join(missing) + "."
 if missing else ""}

{table}
""")


if __name__ == "__main__":
    main()
