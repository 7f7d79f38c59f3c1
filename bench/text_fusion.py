"""Item text in the sequence models: cold items, and whether text helps on movies.

Two parts, each run in its own process (its peak RSS is its own), full ranking on the test
cases, NDCG@10 and HR@10 with seen items filtered and unfiltered:

- ``cold``: a slice of items never appears in training, and the test cases are scored
  separately by whether their target is such a cold item or a warm one.
  * amazon-scientific (given split): 10% of the items, drawn at random with a fixed seed
    (COLD_SEED), lose every training event and every validation case that targets them
    (and leave the validation histories); test histories stay as they are.
  * synthetic (the generator's shop, where 20% of the items are released during the log):
    the library's temporal split (last 10% of the time span is test, the 10% before it
    validation); the cold items are those first seen after the training period, so they
    come from the generator's releases, not from a random draw. Validation cases keep only
    their warm targets. A test case's targets (everything the user did in the test period)
    are split into its cold and its warm targets.
  Models: ``sasrec`` (embedding "id"), ``sasrec+text`` ("id+text" with ID dropout; the cold
  items are in the vocabulary and have text but no events), and ``sasrec+text/new`` (the
  same model trained on the warm items only; the cold items enter after training through
  ``Recommender.add_items``, from their text alone: the product's cold-start path);
  ``/drop0.5`` raises the ID dropout, ``/head1`` adds the text head (``text_head=1``: a
  second, text-only softmax in training). Either way the library places a cold item as
  scale x its text projection at the trained items' mean bias + shift, the pair chosen on
  validation (``prismrec.recommender._cold``); each
  text run is scored a second time with the old placement (zero ID row, the trained items'
  mean bias) put back on the same trained model.
- ``movies``: ml-100k and ml-latest-small, leave-one-out: ``gru`` and ``sasrec`` with and
  without text, and EASE for reference (lam chosen on validation, filtered).

Text vectors: all-MiniLM-L6-v2 (``prismrec.text.encode_catalog``, default template) of each
item's catalogue text, encoded once into TEXT_CACHE. Settings: those of bench/sequence.py
(Scientific SASRec; ml-100k GRU and SASRec, used unchanged for ml-latest-small); the
synthetic SASRec uses the ml-100k SASRec settings with a 50-event window; none was tuned
for this script. Every run stops early on validation NDCG@10 (filtered) or at a wall-time
limit (``--wall-limit``). Each finished run is appended to ``--store`` (JSON lines);
``--resume`` skips runs already stored with the same settings, so seeds can be added later.
Writes the ``text-cold`` and ``text-movies`` sections of docs/benchmarks.md (the parts run).

    python bench/text_fusion.py [--parts cold,movies] [--datasets ...] [--models ...]
                                [--seeds 0,1,2] [--jobs 1] [--threads 1] [--resume]
                                [--keep-models DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from _report import SHARED_DATA, command, machine, markdown_table, peak_rss_mb, write_section

TEXT_CACHE = Path(tempfile.gettempdir()) / "prismrec-bench-text"
STORE = TEXT_CACHE / "text_fusion_runs.jsonl"
WALL_LIMIT_S = 1200.0  # training stops after the epoch that crosses this (wall time)
COLD_FRACTION = 0.1
COLD_SEED = 0
COLD_PLACEMENT = "validation-scale-shift"  # how the library places cold items (fingerprint)
EASE_LAMBDAS = (20.0, 50.0, 100.0, 250.0)
N_BOOTSTRAP = 1000  # for the 95% interval of the filtered NDCG@10 on cold and warm targets

# registry name -> (folder under shared/data, or None for the generator; split)
DATASETS = {
    "amazon-scientific": ("amazon-scientific-unisrec", "given"),
    "synthetic": (None, "temporal"),
    "ml-100k": ("ml-100k", "loo"),
    "ml-latest-small": ("ml-latest-small", "loo"),
}
PARTS = {
    "cold": (("amazon-scientific", "synthetic"), ("sasrec", "sasrec+text", "sasrec+text/new",
                                                  "sasrec+text/drop0.5", "sasrec+text/head1",
                                                  "sasrec+text/head1/new")),
    "movies": (("ml-100k", "ml-latest-small"), ("gru", "gru+text", "sasrec", "sasrec+text",
                                                "ease")),
}

# As in bench/sequence.py (copied, so that edits there do not silently change this table).
_TEXT = {"embedding": "id+text", "id_dropout": 0.1}
_SCI_SAS = ({"dim": 64, "dropout": 0.5, "attn_dropout": 0.5, "max_len": 50},
            {"lr": 1e-3, "batch_size": 64, "patience": 10})
_ML_RNN = ({"dim": 64, "dropout": 0.3, "hidden_dropout": 0.3},
           {"lr": 2e-3, "batch_size": 64, "patience": 8})
_ML_SAS = ({"dim": 64, "dropout": 0.3, "attn_dropout": 0.3, "max_len": 200},
           {"lr": 1e-3, "batch_size": 64, "patience": 8})
_SYN_SAS = ({**_ML_SAS[0], "max_len": 50}, _ML_SAS[1])
CONFIGS: dict[str, dict[str, tuple[dict, dict]]] = {
    "amazon-scientific": {"sasrec": _SCI_SAS},
    "synthetic": {"sasrec": _SYN_SAS},
    "ml-100k": {"gru": _ML_RNN, "sasrec": _ML_SAS},
    "ml-latest-small": {"gru": _ML_RNN, "sasrec": _ML_SAS},
}


def part_of(dataset: str) -> str:
    return next(p for p, (ds, _) in PARTS.items() if dataset in ds)


def model_settings(dataset: str, model: str) -> tuple[str, dict, dict]:
    """(registry model, model config, train config) for a row name like ``gru+text``."""
    base = model.split("+")[0]
    model_cfg, train_cfg = CONFIGS[dataset][base]
    if "+text" in model:
        model_cfg = {**model_cfg, **_TEXT}
    for part in model.split("/")[1:]:  # e.g. sasrec+text/drop0.5/head1: variants of it
        if part.startswith("drop"):  # another ID dropout
            model_cfg = {**model_cfg, "id_dropout": float(part[4:])}
        elif part.startswith("head"):  # the text head, with this weight
            model_cfg = {**model_cfg, "text_head": float(part[4:])}
        elif part != "new":
            raise ValueError(f"unknown model variant {part!r} in {model!r}")
    return base, model_cfg, train_cfg


def fingerprint(dataset: str, model: str, wall_limit: float) -> str:
    """Settings a stored run was made with; --resume reuses it only if they still match."""
    if model == "ease":
        what = {"lambdas": EASE_LAMBDAS}
    else:
        what = {"settings": model_settings(dataset, model), "wall_limit": wall_limit}
    what.update(cold=(COLD_FRACTION, COLD_SEED), split=DATASETS[dataset][1])
    if "+text" in model and part_of(dataset) == "cold":
        what["cold_items"] = COLD_PLACEMENT
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:12]


def load(dataset: str, data_dir: str):
    from prismrec.data import load_dataset

    folder, _ = DATASETS[dataset]
    return load_dataset(dataset) if folder is None else load_dataset(dataset,
                                                                     f"{data_dir}/{folder}")


def text_vectors(dataset: str, data_dir: str) -> Path:
    """Item text vectors in item-vocabulary order, encoded once and kept in TEXT_CACHE."""
    from prismrec.data.catalog import Catalog
    from prismrec.text import encode_catalog

    out = TEXT_CACHE / f"text_fusion-{dataset}.npy"
    if not out.exists():
        ds = load(dataset, data_dir)
        rows = Catalog(ds.catalog.frame.loc[ds.items.to_list()])
        vecs = encode_catalog(rows, cache_dir=TEXT_CACHE / "cache", progress=False)
        TEXT_CACHE.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.npy")
        np.save(tmp, vecs)
        os.replace(tmp, out)
    return out


# -- cold items -------------------------------------------------------------------------------

def cold_split(ds, split_name: str):
    """(split with the cold items out of training and validation, cold mask over items)."""
    from prismrec.data.split import Split

    split = ds.split(split_name)
    n = len(ds.items)
    cold = np.zeros(n, dtype=bool)
    if split_name == "temporal":  # cold = first seen after the training period
        cold[:] = True
        cold[split.train.items] = False
    else:
        rng = np.random.default_rng(COLD_SEED)
        cold[rng.choice(n, int(round(COLD_FRACTION * n)), replace=False)] = True
    train = split.train.mask(~cold[split.train.items])
    return Split(split.name, train, drop_cold(split.valid, cold), split.test), cold


def drop_cold(cases, cold: np.ndarray):
    """Validation cases without cold items in history or targets; empty cases dropped."""
    from prismrec.data.split import EvalCases

    hist = cases.history.mask(~cold[cases.history.items])
    targets = cases.targets.mask(~cold[cases.targets.items])
    rows = np.flatnonzero((hist.lengths > 0) & (targets.lengths > 0))
    return EvalCases(cases.users[rows], hist.take(rows), targets.take(rows))


def targets_in(cases, wanted: np.ndarray):
    """The cases with at least one target in ``wanted`` (an item mask), other targets removed."""
    from prismrec.data.split import EvalCases

    targets = cases.targets.mask(wanted[cases.targets.items])
    rows = np.flatnonzero(targets.lengths > 0)
    return EvalCases(cases.users[rows], cases.history.take(rows), targets.take(rows))


def remap(cases_or_seqs, index: np.ndarray):
    """The same sequences or cases with item i renamed index[i]."""
    from prismrec.data.sequences import Sequences
    from prismrec.data.split import EvalCases

    def seqs(s):
        return Sequences(s.offsets, index[s.items], s.times)

    if isinstance(cases_or_seqs, EvalCases):
        c = cases_or_seqs
        return EvalCases(c.users, seqs(c.history), seqs(c.targets))
    return seqs(cases_or_seqs)


def fit_cold(rec, ds, split, cold: np.ndarray, text: np.ndarray | None, model: str):
    """Train; returns (test cases, cold mask, training rows) in the fitted model's item
    indices."""
    from prismrec.data.catalog import Catalog
    from prismrec.data.split import Split
    from prismrec.data.vocab import Vocab

    if not model.endswith("/new"):
        rec.fit_split(split, ds.users, ds.items, text_vectors=text)
        return split.test, cold, split.train
    from prismrec.text import default_encoder

    warm_idx, cold_idx = np.flatnonzero(~cold), np.flatnonzero(cold)
    index = np.empty(len(cold), dtype=np.int64)
    index[warm_idx] = np.arange(len(warm_idx))
    index[cold_idx] = len(warm_idx) + np.arange(len(cold_idx))
    sp = Split(split.name, remap(split.train, index), remap(split.valid, index),
               remap(split.test, index))
    warm_items = Vocab.from_list(ds.items.ids(warm_idx))
    rec.fit_split(sp, ds.users, warm_items, text_vectors=text[warm_idx],
                  encoder=default_encoder())
    cold_ids = ds.items.ids(cold_idx)
    added = rec.add_items(Catalog(ds.catalog.frame.loc[cold_ids]))
    if added != cold_ids or rec.items_.to_list() != ds.items.ids(np.argsort(index)):
        raise RuntimeError("add_items did not append the cold items in the order given")
    return sp.test, np.arange(len(cold)) >= len(warm_idx), sp.train


# -- one run ----------------------------------------------------------------------------------

def _metrics(scorer, cases, out: dict, tag: str, ci: bool) -> None:
    from prismrec.eval.evaluate import evaluate

    out[f"n_{tag}"] = len(cases)
    for filt in (True, False):
        f = "f" if filt else "u"
        if len(cases) == 0:
            out[f"ndcg_{tag}_{f}"] = out[f"hr_{tag}_{f}"] = float("nan")
            continue
        rep = evaluate(scorer, cases, ks=(10,), filter_seen=filt,
                       n_bootstrap=N_BOOTSTRAP if ci and filt else 0)
        out[f"ndcg_{tag}_{f}"], out[f"hr_{tag}_{f}"] = rep.metrics["ndcg@10"], rep.metrics["hr@10"]
        if ci and filt:
            out[f"ci_{tag}"] = [float(x) for x in rep.ci["ndcg@10"]]


def run_one(dataset: str, model: str, seed: int, threads: int, data_dir: str,
            wall_limit: float, keep: str = "") -> dict:
    """Train and evaluate one (dataset, model, seed); metrics, timings and peak RSS."""
    import torch

    torch.set_num_threads(threads)
    ds = load(dataset, data_dir)
    part, split_name = part_of(dataset), DATASETS[dataset][1]
    out: dict = {"part": part, "dataset": dataset, "model": model, "seed": seed}
    if model == "ease":
        from prismrec.eval.baselines import EASE, tune_ease

        split = ds.split(split_name)
        lam, _ = tune_ease(split.train, split.valid, len(ds.items), lambdas=EASE_LAMBDAS)
        scorer = EASE(lam).fit(split.train, len(ds.items))
        out["lam"] = lam
        _metrics(scorer, split.test, out, "all", ci=False)
    else:
        from prismrec.recommender import Recommender

        base, model_cfg, train_cfg = model_settings(dataset, model)
        tc = {**train_cfg, "seed": seed, "threads": threads, "progress": False,
              "max_seconds": wall_limit}
        text = np.load(text_vectors(dataset, data_dir)) if "+text" in model else None
        rec = Recommender(base, model_config=model_cfg, train_config=tc)
        if part == "cold":
            split, cold = cold_split(ds, split_name)
            test, cold_mask, train = fit_cold(rec, ds, split, cold, text, model)
            out["cold_items"] = int(cold.sum())
            out["train_events"] = int(split.train.n_events)
            _metrics(rec, test, out, "all", ci=False)
            _metrics(rec, targets_in(test, cold_mask), out, "cold", ci=True)
            _metrics(rec, targets_in(test, ~cold_mask), out, "warm", ci=True)
            if keep:
                rec.save(Path(keep) / f"{dataset}-{model.replace('/', '-')}-{seed}")
            if text is not None:
                old_placement(rec, train, out)
                _metrics(rec, targets_in(test, cold_mask), out, "cold_zero", ci=False)
                _metrics(rec, targets_in(test, ~cold_mask), out, "warm_zero", ci=False)
        else:
            split = ds.split(split_name)
            rec.fit_split(split, ds.users, ds.items, text_vectors=text)
            _metrics(rec, split.test, out, "all", ci=False)
        r = rec.result_
        out.update(best_epoch=r.best_epoch, epochs=r.epochs, stopped=r.stopped,
                   train_s=r.seconds, cpu_to_best_s=r.cpu_seconds_to_best,
                   valid_ndcg=r.best_metrics.get("ndcg@10", float("nan")))
    out["cpu_s"] = time.process_time()
    out["rss_mb"], out["rss_source"] = own_peak_rss_mb(), "VmHWM"
    return out


def old_placement(rec, train, out: dict) -> None:
    """Put back the placement cold items had before ``_cold``: a zero ID row and the
    trained items' mean bias (what ``SequenceEncoder.reset_untrained`` does), on the same
    trained model; records the placement that was chosen."""
    import torch

    p = getattr(rec, "cold_placement_", None)
    out["cold_placement"] = None if p is None else {k: v for k, v in p.to_dict().items()
                                                    if k != "table"}
    trained = np.bincount(train.items, minlength=rec.model_.n_items) > 0
    out["untrained_items"] = int((~trained).sum())
    rec.model_.reset_untrained(torch.from_numpy(trained))


def own_peak_rss_mb() -> float:
    """This process's peak RSS since exec (VmHWM).

    Why not ru_maxrss: Linux carries the forking parent's high-water mark into a child's
    ru_maxrss across exec, so a child of a parent that holds the text encoder would report
    at least the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


# -- driver -----------------------------------------------------------------------------------

def _child(job: list[str], timeout: float) -> dict:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, __file__, *job], capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"killed after {timeout:.0f} s of wall time"}
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1] if proc.stderr.strip()
                else f"exit {proc.returncode}", "stderr": proc.stderr[-3000:]}
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    r["wall_s"] = time.perf_counter() - t0
    return r


def _read_store(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _mean(runs: list[dict], key: str) -> float:
    vals = [r[key] for r in runs if key in r and r[key] is not None]
    return float(np.mean(vals)) if vals else float("nan")


def _row(runs: list[dict], keys: dict[str, str]) -> dict:
    row = {"dataset": runs[0]["dataset"], "model": runs[0]["model"], "seeds": len(runs)}
    row.update({col: _mean(runs, key) for col, key in keys.items()})
    for col in ("cold items", "cold cases", "warm cases"):  # the same for every seed
        if col in keys:
            row[col] = int(runs[0][keys[col]])
    if "best epoch" in keys and np.isfinite(row["best epoch"]):
        row["best epoch"] = f"{row['best epoch']:.1f}"
    row["peak RSS MB"] = max(r["rss_mb"] for r in runs)
    if any("rss_source" not in r for r in runs):  # stored by an earlier version: ru_maxrss
        row["peak RSS MB"] = f"{row['peak RSS MB']:.0f}*"
    row = {k: "-" if isinstance(v, float) and np.isnan(v) else v for k, v in row.items()}
    if runs[0]["model"] == "ease":
        row["stopped"] = "lam=" + ",".join(f"{r['lam']:g}" for r in runs)
    else:
        row["stopped"] = ",".join(sorted({str(r["stopped"]) for r in runs}))
    return row


def _ci(runs: list[dict], tag: str) -> str:
    if len(runs) != 1 or f"ci_{tag}" not in runs[0]:
        return ""
    lo, hi = runs[0][f"ci_{tag}"]
    return f"{lo:.4f}–{hi:.4f}"


def _rel(a: float, b: float) -> str:
    return f"{100 * (a / b - 1):+.0f}%" if b > 0 else "n/a"


def _cold_findings(by: dict, dataset: str) -> list[str]:
    out = []
    ident = by.get((dataset, "sasrec"))
    for name in PARTS["cold"][1][1:]:
        r = by.get((dataset, name))
        if not r:
            continue
        ratio = (f"{r['NDCG@10 cold'] / r['NDCG@10 warm']:.2f}x" if r["NDCG@10 warm"] > 0
                 else "n/a")
        line = (f"{dataset}, {name}: cold targets NDCG@10 {r['NDCG@10 cold']:.4f} (HR@10 "
                f"{r['HR@10 cold']:.4f}), {ratio} the warm targets' {r['NDCG@10 warm']:.4f}")
        if isinstance(r.get("NDCG@10 cold, zero ID"), float):
            line += (f"; the same model with the old placement (zero ID row, mean bias): cold "
                     f"{r['NDCG@10 cold, zero ID']:.4f}, warm {r['NDCG@10 warm, zero ID']:.4f}")
        if ident:
            line += (f"; id-only warm {ident['NDCG@10 warm']:.4f} "
                     f"({_rel(r['NDCG@10 warm'], ident['NDCG@10 warm'])} for this row)")
        out.append(line + ".")
    return out


def _header(args) -> list[str]:
    return [f"Machine: {machine()}; torch threads per run: {args.threads}, {args.jobs} run(s) "
            "at a time; the machine was shared with other work, so wall times overstate the "
            f"cost (CPU s is the run's whole process CPU time). Wall limit per training: "
            f"{args.wall_limit:.0f} s.", f"Command: `{command()}`", ""]


def report(results: list[dict], seeds: list[int], args) -> dict[str, str]:
    """The body of each part's section (``text-cold``, ``text-movies``) that has rows."""
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in results:
        groups.setdefault((r["dataset"], r["model"]), []).append(r)
    timing = {"best epoch": "best_epoch", "CPU s": "cpu_s", "CPU s to best": "cpu_to_best_s",
              "wall s": "wall_s"}
    cold_rows, movie_rows = [], []
    for datasets, models in PARTS.values():
        for dataset, model in ((d, m) for d in datasets for m in models):
            runs = groups.get((dataset, model))
            if not runs:
                continue
            if part_of(dataset) == "cold":
                row = _row(runs, {
                    "cold items": "cold_items", "cold cases": "n_cold", "warm cases": "n_warm",
                    "NDCG@10 cold": "ndcg_cold_f", "HR@10 cold": "hr_cold_f",
                    "NDCG@10 warm": "ndcg_warm_f", "HR@10 warm": "hr_warm_f",
                    "NDCG@10 all": "ndcg_all_f", "NDCG@10 cold u": "ndcg_cold_u",
                    "NDCG@10 warm u": "ndcg_warm_u",
                    "NDCG@10 cold, zero ID": "ndcg_cold_zero_f",
                    "NDCG@10 warm, zero ID": "ndcg_warm_zero_f", **timing})
                row["95% CI cold"], row["95% CI warm"] = _ci(runs, "cold"), _ci(runs, "warm")
                cold, warm = row["NDCG@10 cold"], row["NDCG@10 warm"]
                row["cold/warm"] = (f"{cold / warm:.2f}" if isinstance(cold, float)
                                    and isinstance(warm, float) and warm > 0 else "-")
                chosen = [r.get("cold_placement") for r in runs if r.get("cold_placement")]
                row["placement scale,shift"] = ";".join(f"{p['scale']:g},{p['shift']:g}"
                                                        for p in chosen) or "-"
                cold_rows.append(row)
            else:
                row = _row(runs, {"NDCG@10 filtered": "ndcg_all_f", "HR@10 filtered": "hr_all_f",
                                  "NDCG@10 unfiltered": "ndcg_all_u",
                                  "HR@10 unfiltered": "hr_all_u", **timing})
                row["sd NDCG@10 f"] = float(np.std([r["ndcg_all_f"] for r in runs]))
                movie_rows.append(row)
    by = {(r["dataset"], r["model"]): r for r in cold_rows + movie_rows}
    star = ["\\* ru_maxrss of the run's process, which on Linux includes the peak of the "
            "parent that started it (about 1.1 GB here, as it held the text encoder): an "
            "upper bound, exact only where it is above that. Later runs read VmHWM.", ""]
    bodies = {}
    if cold_rows:
        body = _header(args) + [
            "### Cold items", "",
            f"Full ranking; NDCG@10/HR@10 with seen items filtered unless marked u "
            f"(unfiltered); seeds: {','.join(map(str, seeds))} (mean; the 95% bootstrap "
            "intervals over cases are shown for a single seed). amazon-scientific: "
            f"{COLD_FRACTION:.0%} of the items drawn at random (seed {COLD_SEED}) have every "
            "event removed from training and from validation; a test case is cold when its "
            "target is such an item. synthetic: temporal split (last 10% of the time span is "
            "test, the 10% before it validation); the cold items are those first seen after "
            "the training period (items the generator released late); each test case's "
            "targets are split into its cold and its warm targets. sasrec: ID embedding only. "
            "sasrec+text: ID + projected MiniLM text vector, ID dropout 0.1, cold items in the "
            "vocabulary with text but no events; after training the library places each cold "
            "item as scale x its text projection at the trained items' mean bias + shift, "
            "the pair (shown as placement) chosen on the validation cases, which hold no cold "
            "item: 10% of the trained items are placed as cold items would be and the pair "
            "with the best NDCG@10 over all validation cases wins (scale 1, shift 0, the old "
            "placement, is on the grid). sasrec+text/new: the same, trained on the warm items "
            "only; the cold items are added after training with `Recommender.add_items`, "
            "which applies the same placement. sasrec+text/drop0.5: as "
            "sasrec+text with ID dropout 0.5. sasrec+text/head1: as sasrec+text with the "
            "text head (`text_head=1`): training adds a second softmax, weight 1, that scores "
            "every item by its text projection alone plus a bias predicted from its text, so "
            "the text path must rank on its own; a cold item's bias then also gets scale x "
            "(its predicted bias - the trained items' mean predicted bias). The zero ID "
            "columns score the same trained model a second time with the placement cold "
            "items had before (zero ID row, the trained items' mean bias). cold/warm: "
            "NDCG@10 cold over warm. A run stopped by the wall limit (stopped = time) had "
            "not converged: compare its columns with each other, not with converged runs.",
            "",
            markdown_table(cold_rows, ["dataset", "model", "seeds", "cold items", "cold cases",
                                       "warm cases", "NDCG@10 cold", "HR@10 cold", "95% CI cold",
                                       "NDCG@10 warm", "HR@10 warm", "95% CI warm",
                                       "cold/warm", "NDCG@10 cold, zero ID",
                                       "NDCG@10 warm, zero ID", "NDCG@10 all",
                                       "NDCG@10 cold u", "NDCG@10 warm u",
                                       "placement scale,shift",
                                       "best epoch", "stopped", "CPU s", "CPU s to best",
                                       "wall s", "peak RSS MB"]), ""]
        if any(str(r["peak RSS MB"]).endswith("*") for r in cold_rows):
            body += star
        findings = [f for d in PARTS["cold"][0] for f in _cold_findings(by, d)]
        if findings:
            body += ["What the numbers say (computed from the table above):", ""]
            body += [f"- {f}" for f in findings]
        bodies["cold"] = "\n".join(body)
    if movie_rows:
        findings = []
        for dataset in PARTS["movies"][0]:
            for base in ("gru", "sasrec"):
                ident, text = by.get((dataset, base)), by.get((dataset, f"{base}+text"))
                if ident and text:
                    findings.append(
                        f"{dataset}, {base}: id+text NDCG@10 {text['NDCG@10 filtered']:.4f} vs "
                        f"id {ident['NDCG@10 filtered']:.4f} filtered "
                        f"({_rel(text['NDCG@10 filtered'], ident['NDCG@10 filtered'])}), "
                        f"{text['NDCG@10 unfiltered']:.4f} vs {ident['NDCG@10 unfiltered']:.4f}"
                        f" unfiltered ("
                        f"{_rel(text['NDCG@10 unfiltered'], ident['NDCG@10 unfiltered'])}).")
        body = _header(args) + [
            "### Text on movies", "",
            "Leave-one-out, full ranking, mean over seeds "
            f"{','.join(map(str, seeds))}. +text: ID + projected MiniLM vector of the title, "
            "genres (and, on ml-latest-small, user tags), ID dropout 0.1. EASE: lam chosen on "
            f"validation from {', '.join(f'{x:g}' for x in EASE_LAMBDAS)} (shown under "
            "stopped).", "",
            markdown_table(movie_rows, ["dataset", "model", "seeds", "NDCG@10 filtered",
                                        "HR@10 filtered", "NDCG@10 unfiltered",
                                        "HR@10 unfiltered", "sd NDCG@10 f", "best epoch",
                                        "stopped", "CPU s", "CPU s to best", "wall s",
                                        "peak RSS MB"]), ""]
        if any(str(r["peak RSS MB"]).endswith("*") for r in movie_rows):
            body += star
        if findings:
            body += ["What the numbers say (computed from the table above):", ""]
            body += [f"- {f}" for f in findings]
        bodies["movies"] = "\n".join(body)
    return bodies


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=str(SHARED_DATA))
    ap.add_argument("--parts", default=",".join(PARTS), help="cold, movies")
    ap.add_argument("--datasets", default="", help="only these datasets (default: all of the "
                    "chosen parts)")
    ap.add_argument("--models", default="", help="only these rows, e.g. sasrec,sasrec+text")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per run")
    ap.add_argument("--jobs", type=int, default=1, help="runs at the same time")
    ap.add_argument("--wall-limit", type=float, default=WALL_LIMIT_S,
                    help="seconds of wall time after which training stops (per run)")
    ap.add_argument("--store", default=str(STORE), help="JSON lines file of finished runs")
    ap.add_argument("--resume", action="store_true",
                    help="skip runs already in --store with the same settings")
    ap.add_argument("--no-write", action="store_true", help="print only")
    ap.add_argument("--keep-models", default="", metavar="DIR",
                    help="save each trained cold-part model under DIR (for inspection)")
    ap.add_argument("--one", nargs=3, metavar=("DATASET", "MODEL", "SEED"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        d, m, s = args.one
        print(json.dumps(run_one(d, m, int(s), args.threads, args.data_dir, args.wall_limit,
                                 args.keep_models)))
        return

    import torch

    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    only_d = set(filter(None, args.datasets.split(",")))
    only_m = set(filter(None, args.models.split(",")))
    if set(args.parts.split(",")) - set(PARTS):
        sys.exit(f"--parts: unknown part(s) in {args.parts!r}; known: {', '.join(PARTS)}")
    known = {m for part in args.parts.split(",") for m in PARTS[part][1]}
    if only_m - known:
        sys.exit(f"--models: unknown row(s) {sorted(only_m - known)} for --parts "
                 f"{args.parts}; known: {sorted(known)}")
    store = Path(args.store)
    stored = {(r["dataset"], r["model"], r["seed"], r.get("fingerprint")): r
              for r in _read_store(store) if "error" not in r} if args.resume else {}
    results, jobs = [], []
    for part in args.parts.split(","):
        datasets, models = PARTS[part]
        for dataset in datasets:
            if only_d and dataset not in only_d:
                continue
            for model in models:
                if only_m and model not in only_m:
                    continue
                fp = fingerprint(dataset, model, args.wall_limit)
                for seed in ([0] if model == "ease" else seeds):  # EASE has no seed
                    if (dataset, model, seed, fp) in stored:
                        results.append(stored[(dataset, model, seed, fp)])
                        continue
                    if "+text" in model:
                        text_vectors(dataset, args.data_dir)  # encode once, before the runs
                    jobs.append((dataset, model, seed, fp))
    timeout = args.wall_limit + 1200  # loading, evaluation, and the epoch that crosses it

    def launch(job):
        dataset, model, seed, fp = job
        r = _child(["--one", dataset, model, str(seed), "--threads", str(args.threads),
                    "--data-dir", args.data_dir, "--wall-limit", str(args.wall_limit),
                    "--keep-models", args.keep_models], timeout)
        r.update(dataset=dataset, model=model, seed=seed, fingerprint=fp,
                 part=part_of(dataset), when=time.strftime("%Y-%m-%d %H:%M:%S"))
        print(json.dumps({k: v for k, v in r.items() if k != "stderr"}), file=sys.stderr,
              flush=True)
        store.parent.mkdir(parents=True, exist_ok=True)
        with store.open("a") as f:
            f.write(json.dumps(r) + "\n")
        return r

    with ThreadPoolExecutor(args.jobs) as pool:
        results += list(pool.map(launch, jobs))
    bodies = report([r for r in results if "error" not in r], seeds, args)
    failed = [r for r in results if "error" in r]
    for part, text in bodies.items():
        bad = [r for r in failed if r["part"] == part]
        if bad:
            text += "\n\nRuns that did not finish: " + "; ".join(
                f"{r['dataset']} {r['model']} seed {r['seed']}: {r['error']}" for r in bad)
        print(text + "\n")
        if not args.no_write:  # the section heading stays outside, in the document
            write_section(f"text-{part}", text)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
