"""Scaling curves: data-parallel throughput, epoch time, sampled softmax, Parquet scan.

Points (each in its own process, so its peak RSS is its own):

- ``log``/``scan``: write a synthetic event log of 1M / 10M / 50M events to Parquet (a fast
  vectorised writer below: string ids, users interleaved in global time order, heavy-tailed
  user activity and item popularity), then read it with ``prismrec.data.scan.scan_events``
  into CSR sequences: time and peak RSS of each.
- ``ddp``: LSTM + sampled softmax training throughput (predicted events/s over one epoch of a
  fixed slice of the 1M log) with 1 process x 1 thread, 1 process x 2 threads and 2 gloo
  processes x 1 thread (DistributedDataParallel, same global batch).
- ``epoch``: one epoch of the LSTM with sampled softmax at 1M and 10M events (data scanned
  from the Parquet log). Epochs longer than ``--epoch-probe`` events are *projected*: the
  whole log is loaded, and the rate is measured on a full epoch over a random subset of its
  users with that many events; the table says which rows are projected.
- ``quality``: full vs sampled softmax at 100k items on the synthetic shop generator,
  leave-one-out test NDCG@10 (full ranking, seen items filtered), one process per variant
  (``--quality-variants``: ``full@2`` = full softmax for 2 epochs, ``popularity:4096`` =
  4,096 popularity negatives with early stopping on validation, ...), with the CPU
  seconds each took: the equal-epochs and the equal-time comparison.
- ``softmax_cost``: CPU seconds of one full-softmax epoch at 100k items, measured on a user
  slice and projected to the whole training set: the equal-time budget of ``quality``.
- ``million``: sampled softmax with 1,000,000 items: seconds per step and peak RSS.
- ``amp``: bf16 autocast vs float32 on the ``ddp`` slice (1 process).

    python bench/scale.py [--points log,scan,ddp,epoch,quality,softmax_cost,million,amp]
        [--scan-sizes 1000000,10000000,50000000] [--epoch-sizes 1000000,10000000]
        [--quality-variants full@2,popularity:4096,...] [--jobs 2] [--threads 1] [--write]

``--write`` merges into the ``scale`` section of docs/benchmarks.md: the rows of the points run
now replace the same rows there (same size, process count or variant), every other row stays
with the run that measured it (kept as JSON in an HTML comment of the section), and the page
names each table's run. ``--points '' --write`` only re-renders the section.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads must not spin

import numpy as np  # noqa: E402
from _report import (  # noqa: E402
    DOC,
    command,
    machine,
    markdown_table,
    peak_rss_mb,
    write_section,
)

WORK = Path("/tmp/prismrec-scale")
EVENTS_PER_USER = 30
LOG_ITEMS = 20_000
ROW_GROUP = 1_000_000
MODEL = {"dim": 64}
QUALITY_VARIANTS = ("full@2,popularity:1024@2,popularity:4096@2,popularity:1024,popularity:4096,"
                    "uniform:4096,in-batch")
TRAIN = {"loss": "sampled", "negatives": "popularity", "n_negatives": 1024, "batch_size": 128,
         "tbptt": 50, "epochs": 1, "progress": False}


def log_path(n: int, n_items: int = LOG_ITEMS) -> Path:
    return WORK / f"events-{n}-{n_items}.parquet"


# ------------------------------------------------------------------------ synthetic log


def write_log(path: Path, n_events: int, n_items: int, seed: int = 0) -> None:
    """Parquet log (user, item, timestamp) written one row group at a time."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_users = max(1, n_events // EVENTS_PER_USER)
    activity = rng.gamma(2.0, size=n_users)  # heavy-tailed events per user
    cum = np.cumsum(activity / activity.sum())
    item_of_rank = rng.permutation(n_items)  # popularity rank -> item id
    t0, span = 1_600_000_000, 180 * 86_400
    tmp = path.with_suffix(".tmp")
    schema = pa.schema([("user", pa.string()), ("item", pa.string()), ("timestamp", pa.int64())])
    with pq.ParquetWriter(tmp, schema) as writer:
        for lo in range(0, n_events, ROW_GROUP):
            m = min(ROW_GROUP, n_events - lo)
            users = np.minimum(np.searchsorted(cum, rng.random(m)), n_users - 1)
            items = item_of_rank[(rng.random(m) ** 3 * n_items).astype(np.int64)]
            times = t0 + (lo + np.sort(rng.random(m)) * m) * (span / n_events)
            writer.write_table(pa.table({
                "user": pc.binary_join_element_wise("u", pc.cast(pa.array(users), pa.string()),
                                                    ""),
                "item": pc.binary_join_element_wise("i", pc.cast(pa.array(items), pa.string()),
                                                    ""),
                "timestamp": pa.array(times.astype(np.int64)),
            }, schema=schema))
    tmp.replace(path)


def ensure_log(n: int, n_items: int = LOG_ITEMS) -> Path:
    path = log_path(n, n_items)
    if not path.exists():
        WORK.mkdir(parents=True, exist_ok=True)
        write_log(path, n, n_items)
    return path


# ------------------------------------------------------------------------ child points


def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def point_log(a) -> dict:
    path = log_path(a.n)
    path.unlink(missing_ok=True)
    WORK.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    write_log(path, a.n, LOG_ITEMS)
    return {"seconds": time.perf_counter() - t, "mb_on_disk": path.stat().st_size / 2**20}


def point_scan(a) -> dict:
    from prismrec.data.scan import scan_events

    path = ensure_log(a.n)
    t = time.perf_counter()
    data = scan_events(path)
    return {"seconds": time.perf_counter() - t, "events": data.sequences.n_events,
            "users": len(data.users), "items": len(data.items)}


def _slice(data, n_events: int, seed: int = 0):
    """Random users of ``data`` with about ``n_events`` events in all."""
    seqs = data.sequences
    if n_events >= seqs.n_events:
        return seqs
    order = np.random.default_rng(seed).permutation(len(seqs))
    keep = order[: int(np.searchsorted(np.cumsum(seqs.lengths[order]), n_events)) + 1]
    return seqs.take(np.sort(keep))


def _train_epoch(seqs, n_items: int, threads: int, **train) -> dict:
    import torch

    from prismrec.models import MODELS
    from prismrec.train import Trainer

    torch.manual_seed(0)
    model = MODELS["lstm"](n_items, MODEL)
    result = Trainer({**TRAIN, "threads": threads, **train}).fit(model, seqs)
    predictions = int(np.maximum(seqs.lengths - 1, 0).sum())
    return {"epoch_s": result.seconds_per_epoch, "predictions": predictions,
            "events_per_s": predictions / result.seconds_per_epoch,
            "loss": result.history[-1]["loss"]}


def _ddp_rank(rank: int, world: int, port: int, a, out: str) -> None:
    from prismrec.data.scan import scan_events
    from prismrec.train.distributed import init_distributed, shutdown

    _threads(a.threads_per_rank)
    init_distributed(rank, world, init_method=f"tcp://127.0.0.1:{port}")
    try:
        data = scan_events(ensure_log(1_000_000))
        row = _train_epoch(_slice(data, a.n), len(data.items), a.threads_per_rank)
        row["rank_peak_rss_mb"] = peak_rss_mb()
        Path(f"{out}.{rank}").write_text(json.dumps(row))
    finally:
        shutdown()


def point_ddp(a) -> dict:
    if a.nproc == 1:
        from prismrec.data.scan import scan_events

        _threads(a.threads_per_rank)
        data = scan_events(ensure_log(1_000_000))
        return _train_epoch(_slice(data, a.n), len(data.items), a.threads_per_rank)
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = str(WORK / f"ddp-{os.getpid()}")
    mp.start_processes(_ddp_rank, args=(a.nproc, port, a, out), nprocs=a.nproc, join=True,
                       start_method="spawn")
    rows = [json.loads(Path(f"{out}.{r}").read_text()) for r in range(a.nproc)]
    for r in range(a.nproc):
        Path(f"{out}.{r}").unlink()
    row = rows[0]
    row["rank_peak_rss_mb"] = max(x["rank_peak_rss_mb"] for x in rows)
    row["sum_peak_rss_mb"] = sum(x["rank_peak_rss_mb"] for x in rows)
    return row


def point_epoch(a) -> dict:
    from prismrec.data.scan import scan_events

    _threads(a.threads)
    t = time.perf_counter()
    data = scan_events(ensure_log(a.n))
    scan_s = time.perf_counter() - t
    seqs = data.sequences
    sub = _slice(data, a.probe)
    row = _train_epoch(sub, len(data.items), a.threads)
    total = int(np.maximum(seqs.lengths - 1, 0).sum())
    row.update(scan_s=scan_s, events=seqs.n_events, measured_on=sub.n_events,
               projected=sub.n_events < seqs.n_events,
               epoch_s=row["epoch_s"] * total / row["predictions"])
    return row


def parse_variant(text: str) -> dict:
    """``full@2`` / ``popularity:4096`` / ``in-batch@2``: loss, negatives, fixed epochs.

    Without ``@epochs`` the variant trains with early stopping on the validation cases.
    """
    name, _, epochs = text.partition("@")
    negatives, _, n = name.partition(":")
    if negatives != "full" and negatives not in ("popularity", "uniform", "in-batch"):
        raise SystemExit(f"unknown quality variant {text!r}")
    return {"variant": text, "loss": "ce" if negatives == "full" else "sampled",
            "negatives": negatives, "n_negatives": int(n or 1024),
            "epochs": int(epochs) if epochs else 0}


def _quality_data(users: int):
    from prismrec.data import leave_one_out
    from prismrec.data.synthetic import generate

    data = generate(n_users=users, n_items=100_000, seed=0).to_dataset()
    return data, leave_one_out(data.sequences)


def point_quality(a) -> dict:
    """One loss variant at 100k items: test NDCG@10 and the CPU time its training took."""
    import torch

    from prismrec.models import MODELS
    from prismrec.train import Trainer, rank_metrics

    _threads(a.threads)
    v = parse_variant(a.variant)
    data, split = _quality_data(a.users)
    torch.manual_seed(0)
    model = MODELS["lstm"](len(data.items), MODEL)
    train = {"loss": v["loss"], "threads": a.threads}
    if v["loss"] == "sampled":
        train.update(negatives=v["negatives"], n_negatives=v["n_negatives"])
    if v["epochs"]:
        train["epochs"] = v["epochs"]
        valid = None
    else:  # early stopping on validation NDCG@10, as a user would train
        train.update(epochs=a.epochs, patience=a.patience)
        valid = split.valid
    cpu = time.process_time()
    result = Trainer({**TRAIN, **train}).fit(model, split.train, valid)
    cpu_s = time.process_time() - cpu
    metrics = rank_metrics(model, split.test, k=10, filter_seen=True)
    return {"ndcg@10": metrics["ndcg@10"], "hr@10": metrics["hr@10"],
            "train_s": result.seconds, "cpu_s": cpu_s,
            "cpu_to_best_s": result.cpu_seconds_to_best,
            "epoch_s": result.seconds_per_epoch, "epochs_run": result.epochs,
            "best_epoch": result.best_epoch, "stopped": result.stopped,
            "valid_ndcg": [round(h["valid_ndcg@10"], 4) for h in result.history
                           if "valid_ndcg@10" in h],
            "events": data.sequences.n_events,
            "predictions": int(np.maximum(split.train.lengths - 1, 0).sum())}


def point_softmax_cost(a) -> dict:
    """CPU seconds per predicted event of one full-softmax epoch, on a user slice."""
    import torch

    from prismrec.models import MODELS
    from prismrec.train import Trainer

    _threads(a.threads)
    data, split = _quality_data(a.users)
    order = np.random.default_rng(0).permutation(len(split.train))
    lengths = split.train.lengths[order]
    keep = order[: int(np.searchsorted(np.cumsum(lengths), a.probe)) + 1]
    sub = split.train.take(np.sort(keep))
    torch.manual_seed(0)
    model = MODELS["lstm"](len(data.items), MODEL)
    cpu = time.process_time()
    result = Trainer({**TRAIN, "loss": "ce", "epochs": 1, "threads": a.threads}).fit(model, sub)
    cpu_s = time.process_time() - cpu
    predictions = int(np.maximum(sub.lengths - 1, 0).sum())
    total = int(np.maximum(split.train.lengths - 1, 0).sum())
    return {"measured_on": predictions, "cpu_s": cpu_s, "epoch_s": result.seconds,
            "cpu_per_epoch_s": cpu_s * total / predictions, "predictions": total}


def point_million(a) -> dict:
    from prismrec.data.scan import scan_events

    _threads(a.threads)
    data = scan_events(ensure_log(a.n, 1_000_000))
    sub = _slice(data, a.probe)
    row = _train_epoch(sub, 1_000_000, a.threads)
    steps = -(-len(sub) // TRAIN["batch_size"])
    row.update(items=1_000_000,
               batches=steps, s_per_batch=row["epoch_s"] / steps)
    return row


def point_amp(a) -> dict:
    from prismrec.data.scan import scan_events

    _threads(a.threads)
    data = scan_events(ensure_log(1_000_000))
    return _train_epoch(_slice(data, a.n), len(data.items), a.threads, amp=a.amp)


POINTS = {"log": point_log, "scan": point_scan, "ddp": point_ddp, "epoch": point_epoch,
          "quality": point_quality, "softmax_cost": point_softmax_cost,
          "million": point_million, "amp": point_amp}


def child_main(a) -> None:
    t = time.perf_counter()
    row = POINTS[a.child](a)
    row["wall_s"] = time.perf_counter() - t
    row["peak_rss_mb"] = peak_rss_mb()
    print("RESULT " + json.dumps(row), flush=True)


# ------------------------------------------------------------------------ parent


def run_point(name: str, **opts) -> dict:
    argv = [sys.executable, __file__, "--child", name]
    for k, v in opts.items():
        argv += [f"--{k.replace('_', '-')}", str(v)]
    print(f"[scale] {name} {opts}", file=sys.stderr, flush=True)
    done = subprocess.run(argv, capture_output=True, text=True)
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"point {name} {opts} failed:\n{done.stderr[-3000:]}")
    row = {"point": name, **opts, **json.loads(lines[-1][7:])}
    print(f"[scale]   -> {json.dumps(row)}", file=sys.stderr, flush=True)
    return row


def _ints(text: str) -> list[int]:
    return [int(float(x)) for x in text.split(",") if x.strip()]


def _m(n: int) -> str:
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1e3:g}k"


DATA_TAG = "scale-data"
KEYS = {"log": ("n",), "scan": ("n",), "ddp": ("nproc", "threads_per_rank"), "epoch": ("n",),
        "quality": ("variant",), "softmax_cost": (), "million": (), "amp": ("amp",)}


def previous_data() -> dict:
    """Rows and runs stored (as JSON in an HTML comment) in the current ``scale`` section."""
    if not DOC.exists():
        return {"runs": {}, "rows": {}}
    m = re.search(r"<!-- bench:scale -->.*?<!-- " + DATA_TAG + r": (\{.*?\}) -->",
                  DOC.read_text(), re.S)
    return json.loads(m.group(1)) if m else {"runs": {}, "rows": {}}


def merge(old: dict, new_rows: dict[str, list[dict]], run: dict) -> dict:
    """Old rows, with each row of this run replacing the old row of the same point and key."""
    run_id = str(1 + max((int(k) for k in old["runs"]), default=0))
    rows = {p: list(old["rows"].get(p, [])) for p in POINTS}
    for point, fresh in new_rows.items():
        for row in fresh:
            key = tuple(row.get(k) for k in KEYS[point])
            rows[point] = [r for r in rows[point]
                           if tuple(r.get(k) for k in KEYS[point]) != key]
            rows[point].append({**row, "run": run_id})
    used = {r["run"] for rs in rows.values() for r in rs}
    runs = {k: v for k, v in {**old["runs"], run_id: run}.items() if k in used}
    return {"runs": runs, "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", default="log,scan,ddp,epoch,quality,softmax_cost,million,amp")
    ap.add_argument("--scan-sizes", default="1000000,10000000,50000000")
    ap.add_argument("--epoch-sizes", default="1000000,10000000")
    ap.add_argument("--epoch-probe", type=int, default=1_000_000,
                    help="largest epoch measured in full; bigger ones are projected")
    ap.add_argument("--ddp-events", type=int, default=150_000, help="slice of the 1M log")
    ap.add_argument("--quality-users", type=int, default=4000)
    ap.add_argument("--quality-variants", default=QUALITY_VARIANTS,
                    help="comma list: full|popularity|uniform|in-batch[:negatives][@epochs]; "
                    "without @epochs: early stopping on validation")
    ap.add_argument("--quality-max-epochs", type=int, default=40,
                    help="epoch cap of the early-stopped variants")
    ap.add_argument("--quality-patience", type=int, default=3)
    ap.add_argument("--cost-events", type=int, default=12_000,
                    help="events of the user slice the softmax_cost point trains on")
    ap.add_argument("--million-events", type=int, default=20_000,
                    help="events trained on in the 1M-item point")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads per process (default 1: the machine is shared)")
    ap.add_argument("--jobs", type=int, default=1,
                    help="quality points run this many at a time (compare CPU, not wall, s)")
    ap.add_argument("--write", action="store_true",
                    help="merge into the docs/benchmarks.md section: points run now replace "
                    "their rows, other rows stay with the run that measured them")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    for hidden in ("n", "nproc", "threads-per-rank", "probe", "users", "epochs", "patience"):
        ap.add_argument(f"--{hidden}", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    ap.add_argument("--amp", type=lambda s: s == "True", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child_main(a)
        return
    points = [p.strip() for p in a.points.split(",") if p.strip()]
    unknown = sorted(set(points) - set(POINTS))
    if unknown:
        raise SystemExit(f"unknown point(s) {unknown}; known: {sorted(POINTS)}")
    variants = [x.strip() for x in a.quality_variants.split(",") if x.strip()]
    for v in variants:
        parse_variant(v)
    t_all = time.perf_counter()
    rows: dict[str, list[dict]] = {}
    scan_sizes, epoch_sizes = _ints(a.scan_sizes), _ints(a.epoch_sizes)
    if "log" in points:
        rows["log"] = [run_point("log", n=n) for n in scan_sizes]
    if "scan" in points:
        rows["scan"] = [run_point("scan", n=n) for n in scan_sizes]
    if "ddp" in points:
        rows["ddp"] = [run_point("ddp", n=a.ddp_events, nproc=p, threads_per_rank=t)
                       for p, t in ((1, 1), (1, 2), (2, 1))]
    if "epoch" in points:
        rows["epoch"] = [run_point("epoch", n=n, probe=a.epoch_probe, threads=a.threads)
                         for n in epoch_sizes]
    jobs = []
    if "softmax_cost" in points:
        jobs.append(("softmax_cost", {"users": a.quality_users, "probe": a.cost_events,
                                      "threads": a.threads}))
    if "quality" in points:
        jobs += [("quality", {"variant": v, "users": a.quality_users,
                              "epochs": a.quality_max_epochs, "patience": a.quality_patience,
                              "threads": a.threads}) for v in variants]
    if jobs:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max(1, a.jobs)) as pool:
            done = list(pool.map(lambda job: run_point(job[0], **job[1]), jobs))
        for (name, _), row in zip(jobs, done, strict=True):
            rows.setdefault(name, []).append(row)
    if "million" in points:
        rows["million"] = [run_point("million", n=1_000_000, probe=a.million_events,
                                     threads=a.threads)]
    if "amp" in points:
        rows["amp"] = [run_point("amp", n=a.ddp_events, amp=amp, threads=a.threads)
                       for amp in (False, True)]
    run = {"command": command(), "machine": _machine(), "date": str(date.today()),
           "minutes": round((time.perf_counter() - t_all) / 60, 1),
           "points": sorted(rows), "jobs": a.jobs}
    data = merge(previous_data(), rows, run)
    body = report(data)
    print(body)
    if a.write:
        write_section("scale", body)


def _machine() -> str:
    """Machine facts without the parent's torch thread count (each table gives its own)
    and without the date (the run has its own)."""
    return re.sub(r" with \d+ threads|, \d{4}-\d\d-\d\d$", "", machine())


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _runs_of(rows: list[dict]) -> str:
    runs = sorted({r["run"] for r in rows}, key=int)
    return ("run " if len(runs) == 1 else "runs ") + ", ".join(runs)


def report(data: dict) -> str:
    rows, runs = {p: data["rows"].get(p, []) for p in POINTS}, data["runs"]
    out = ["## Scaling: data-parallel training, big catalogues, Parquet scan", "",
           "Each point ran in its own process (peak RSS is that process's own); torch threads "
           "per process are given with each table. The machine was shared with other "
           "developers' jobs (load average well above its 2 cores at times), so wall times are "
           "pessimistic and noisy; compare rows within a table, and CPU seconds where given. "
           "`bench/scale.py --write` replaces the rows of the points it ran and keeps the "
           "others; each table names the run that measured it:", ""]
    for k in sorted(runs, key=int):
        r = runs[k]
        jobs = f", {r['jobs']} points at a time" if r.get("jobs", 1) > 1 else ""
        out.append(f"- run {k}: `{r['command']}` — {r['machine']}, {r['date']}; "
                   f"{r['minutes']} min{jobs}; points: {', '.join(r['points'])}"
                   + (f" ({r['note']})." if r.get("note") else "."))
    out.append("")
    if rows["log"] or rows["scan"]:
        scans = {r["n"]: r for r in rows["scan"]}
        table = []
        for r in rows["log"] or rows["scan"]:
            n = r["n"]
            w = next((x for x in rows["log"] if x["n"] == n), {})
            s = scans.get(n, {})
            table.append({"events": _m(n), "write s": w.get("seconds", ""),
                          "write peak RSS MB": w.get("peak_rss_mb", ""),
                          "Parquet MB": w.get("mb_on_disk", ""),
                          "scan s": s.get("seconds", ""),
                          "scan peak RSS MB": s.get("peak_rss_mb", ""),
                          "users": s.get("users", ""), "items": s.get("items", "")})
        out += ["### Synthetic log → Parquet → CSR sequences", "",
                f"({_runs_of(rows['log'] + rows['scan'])}) String ids, 30 events per user on "
                f"average, {LOG_ITEMS:,} items, users interleaved in global time order. "
                "`scan_events` reads record batches of 1M rows with pyarrow.dataset, maps "
                "each batch's distinct ids through the vocabularies, and groups by user "
                "with a 16-bit radix sort once at the end.", "",
                markdown_table(table, list(table[0])), ""]
    if rows["ddp"]:
        table = [{"processes x threads": f"{r['nproc']} x {r['threads_per_rank']}",
                  "events/s": r["events_per_s"], "epoch s": r["epoch_s"],
                  "epoch loss": r["loss"],
                  "peak RSS MB (per rank)": r.get("rank_peak_rss_mb", r["peak_rss_mb"])}
                 for r in rows["ddp"]]
        out += ["### Training throughput vs processes", "",
                f"({_runs_of(rows['ddp'])}) LSTM (dim {MODEL['dim']}), sampled softmax (1,024 "
                f"popularity negatives), one epoch over {_m(rows['ddp'][0]['predictions'])} "
                f"predictions (a user slice of the 1M log, {LOG_ITEMS:,} items), global batch "
                "128 users. 2 processes = DistributedDataParallel over gloo on this machine, "
                "each rank 64 users of every batch. The machine has 2 cores, so 2 x 1 is the "
                "same CPU as 1 x 2; the gain of more processes shows on more cores or "
                "machines.", "", markdown_table(table, list(table[0])), ""]
    if rows["epoch"]:
        table = [{"events": _m(r["n"]), "epoch s": r["epoch_s"],
                  "how": ("projected from a measured epoch over "
                          f"{_m(r['measured_on'])} events" if r["projected"] else "measured"),
                  "events/s": r["events_per_s"], "scan s": r["scan_s"],
                  "peak RSS MB": r["peak_rss_mb"]} for r in rows["epoch"]]
        threads = sorted({r["threads"] for r in rows["epoch"]})
        out += ["### Epoch time vs events", "",
                f"({_runs_of(rows['epoch'])}) LSTM (dim {MODEL['dim']}) with sampled softmax, "
                f"{_plural(threads[0], 'torch thread') if len(threads) == 1 else threads}, data "
                "scanned from the Parquet log in the same process (peak RSS includes it).", "",
                markdown_table(table, list(table[0])), ""]
    if rows["quality"]:
        out += quality_report(rows["quality"], rows["softmax_cost"], runs)
    if rows["million"]:
        r = rows["million"][0]
        out += ["### Sampled softmax with 1,000,000 items", "",
                f"({_runs_of([r])}) LSTM dim {MODEL['dim']} over 1,000,000 items (64M "
                "parameters in the item table; AdamW keeps two more copies), "
                f"{_plural(r['threads'], 'torch thread')}, one epoch of {r['predictions']:,} "
                f"predictions in {r['batches']} batches: {r['s_per_batch']:.2f} s per batch, "
                f"loss {r['loss']:.3f}, peak RSS {r['peak_rss_mb']:,.0f} MB (data included). "
                "Memory is bounded by the tables, not by the catalogue times the batch: the "
                "sampled loss scores 1,024 shared negatives per step.", ""]
    if rows["amp"]:
        table = [{"precision": "bf16 autocast" if r["amp"] else "float32",
                  "events/s": r["events_per_s"], "epoch loss": r["loss"]} for r in rows["amp"]]
        out += ["### bf16 autocast (TrainConfig.amp)", "",
                f"({_runs_of(rows['amp'])}) Same slice as the throughput table, 1 process, "
                f"{_plural(rows['amp'][0]['threads'], 'torch thread')}. The encoder runs under "
                "bf16 autocast, the loss in float32. This CPU has AVX512-BF16/AMX.", "",
                markdown_table(table, list(table[0])), ""]
    out += [f"<!-- {DATA_TAG}: {json.dumps(data, separators=(',', ':'))} -->"]
    return "\n".join(out)


def _loss_name(v: dict) -> str:
    if v["loss"] == "ce":
        return "full softmax"
    if v["negatives"] == "in-batch":
        return "sampled (in-batch negatives, logQ)"
    return f"sampled ({v['n_negatives']:,} {v['negatives']} negatives, logQ)"


def _short(variant: str) -> str:
    """Prose name of a variant: "4,096 popularity negatives", "in-batch negatives"."""
    v = parse_variant(variant)
    if v["loss"] == "ce":
        return "full softmax"
    if v["negatives"] == "in-batch":
        return "in-batch negatives"
    return f"{v['n_negatives']:,} {v['negatives']} negatives"


def quality_report(quality: list[dict], cost: list[dict], runs: dict) -> list[str]:
    """Sampled vs full softmax at equal epochs and at an equal CPU-time budget."""
    table = []
    for r in quality:
        v = parse_variant(r["variant"])
        valid = r.get("valid_ndcg") or []
        table.append({
            "loss": _loss_name(v),
            "epochs": (f"{v['epochs']} fixed" if v["epochs"] else
                       f"best {r['best_epoch']} of {r['epochs_run']} ({r['stopped']})"),
            "valid NDCG@10": max(valid) if valid else "",
            "test NDCG@10": r["ndcg@10"], "test HR@10": r["hr@10"],
            "train CPU s": r.get("cpu_s", "not recorded"), "train wall s": r["train_s"],
            "peak RSS MB": r["peak_rss_mb"], "run": r["run"]})
    q = quality[0]
    threads = sorted({r.get("threads", 1) for r in quality})
    patience = sorted({r["patience"] for r in quality if r.get("valid_ndcg")})
    stopping = ("; the others train as a user would, with early stopping on the validation "
                f"cases (NDCG@10, patience {', '.join(map(str, patience))}), and their CPU "
                "time includes validation. The sampled settings were chosen on validation "
                "NDCG@10 only" if patience else "")
    out = ["### Sampled vs full softmax at 100k items", "",
           f"Synthetic shop generator, {q['users']:,} users, 100,000 items, {q['events']:,} "
           f"events; LSTM dim {MODEL['dim']}, batch 128 users, "
           f"{_plural(threads[0], 'torch thread') if len(threads) == 1 else threads}; "
           "leave-one-out test, full ranking, seen items filtered. Rows with fixed epochs "
           f"train without validation{stopping}.", "",
           markdown_table(table, list(table[0])), ""]
    full = next((r for r in quality if r["variant"].startswith("full")), None)
    if cost:
        c = cost[0]
        budget = 2 * c["cpu_per_epoch_s"]
        out += [f"Cost of the full softmax (run {c['run']}, softmax_cost point): one epoch over "
                f"{c['measured_on']:,} of the {c['predictions']:,} training predictions took "
                f"{c['cpu_s']:.1f} CPU s, so a full epoch costs about "
                f"{c['cpu_per_epoch_s']:.0f} CPU s and the 2 epochs of the full-softmax row "
                f"about {budget:.0f} CPU s: the equal-time budget. (The full-softmax row "
                "itself may come from another run: training is seeded and deterministic.)", ""]
    else:
        budget = None
    full_epochs = None if full is None else parse_variant(full["variant"])["epochs"]
    fixed = [r for r in quality if parse_variant(r["variant"])["epochs"] == full_epochs
             and not r["variant"].startswith("full")]
    stopped = [r for r in quality if not parse_variant(r["variant"])["epochs"]
               and not r["variant"].startswith("full") and r.get("valid_ndcg")]
    if full is None or not full_epochs:
        return out
    ref = full["ndcg@10"]
    out += [f"**Equal epochs ({full_epochs}).** Full softmax: test NDCG@10 {ref:.4f} "
            f"(run {full['run']}). "
            + " ".join(f"Sampled with {_short(r['variant'])}: {r['ndcg@10']:.4f}, "
                       f"{r['ndcg@10'] / ref:.0%} of it (run {r['run']})." for r in fixed)
            + " Per epoch the sampled loss learns less: it moves 1,024-4,096 shared negatives "
            "per step where the full softmax moves all 100,000 items.", ""]
    if stopped:
        best = max(stopped, key=lambda r: max(r["valid_ndcg"]))
        ratio = best["ndcg@10"] / ref
        if ratio >= 1:
            verdict = f"{ratio - 1:.0%} above"
        elif ratio >= 0.9:
            verdict = f"within {1 - ratio:.0%} of"
        else:
            verdict = f"{1 - ratio:.0%} short of"
        text = "**Equal time.** "
        if budget is not None:
            under = all(r["cpu_s"] <= budget for r in stopped)
            text += (f"The budget is the CPU time of the full softmax's {full_epochs} epochs, "
                     f"about {budget:.0f} CPU s (above); every early-stopped sampled run, "
                     f"validation included, used {'less' if under else 'not always less'}. ")
        text += (f"The setting best on validation, {_short(best['variant'])} with logQ "
                 f"(best epoch {best['best_epoch']}, {best['cpu_s']:.0f} CPU s), reaches test "
                 f"NDCG@10 {best['ndcg@10']:.4f}: {verdict} the full softmax's. ")
        text += " ".join(f"With {_short(r['variant'])}: {r['ndcg@10']:.4f} in "
                         f"{r['cpu_s']:.0f} CPU s." for r in stopped if r is not best)
        hr = full["hr@10"]
        text += (f" A test set of {q['users']:,} users does not separate differences this "
                 f"small: the binomial standard error of HR@10 alone is about "
                 f"{(hr * (1 - hr) / q['users']) ** 0.5:.4f}.")
        if ratio >= 0.9:
            text += (" So at 100k items, sampled softmax given the time the full softmax takes "
                     f"for {full_epochs} epochs matches its quality; it does not match the full "
                     "softmax's quality per epoch. Not measured: the full softmax trained to "
                     f"convergence ({full_epochs} epochs are the equal-time budget, not its best"
                     + ("" if budget is None else
                        f"; each more epoch costs about {budget / full_epochs:.0f} CPU s")
                     + ").")
        else:
            text += (" What remains: given the full softmax's time, the sampled loss still "
                     "stops short of its quality.")
        out += [text, ""]
    return out


if __name__ == "__main__":
    main()
