"""Scaling curves in one run: data-parallel throughput, epoch time, sampled softmax, Parquet scan.

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
- ``quality``: full vs sampled softmax (popularity negatives, logQ) at 100k items on the
  synthetic shop generator, same epochs, leave-one-out test NDCG@10 (full ranking, seen
  items filtered).
- ``million``: sampled softmax with 1,000,000 items: seconds per step and peak RSS.
- ``amp``: bf16 autocast vs float32 on the ``ddp`` slice (1 process).

    python bench/scale.py [--points log,scan,ddp,epoch,quality,million,amp]
        [--scan-sizes 1000000,10000000,50000000] [--epoch-sizes 1000000,10000000]
        [--threads 2] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads must not spin

import numpy as np  # noqa: E402
from _report import command, machine, markdown_table, peak_rss_mb, write_section  # noqa: E402

WORK = Path("/tmp/prismrec-scale")
EVENTS_PER_USER = 30
LOG_ITEMS = 20_000
ROW_GROUP = 1_000_000
MODEL = {"dim": 64}
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


def point_quality(a) -> dict:
    from prismrec.data import leave_one_out
    from prismrec.data.synthetic import generate
    from prismrec.models import MODELS
    from prismrec.train import Trainer, rank_metrics

    _threads(a.threads)
    data = generate(n_users=a.users, n_items=100_000, seed=0).to_dataset()
    split = leave_one_out(data.sequences)
    import torch

    torch.manual_seed(0)
    model = MODELS["lstm"](len(data.items), MODEL)
    train = {"loss": a.loss, "epochs": a.epochs} if a.loss == "sampled" else {
        "loss": "ce", "epochs": a.epochs}
    result = Trainer({**TRAIN, "threads": a.threads, **train}).fit(model, split.train)
    metrics = rank_metrics(model, split.test, k=10, filter_seen=True)
    return {"ndcg@10": metrics["ndcg@10"], "hr@10": metrics["hr@10"],
            "train_s": result.seconds, "events": data.sequences.n_events,
            "epoch_s": result.seconds_per_epoch}


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
          "quality": point_quality, "million": point_million, "amp": point_amp}


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", default="log,scan,ddp,epoch,quality,million,amp")
    ap.add_argument("--scan-sizes", default="1000000,10000000,50000000")
    ap.add_argument("--epoch-sizes", default="1000000,10000000")
    ap.add_argument("--epoch-probe", type=int, default=1_000_000,
                    help="largest epoch measured in full; bigger ones are projected")
    ap.add_argument("--ddp-events", type=int, default=150_000, help="slice of the 1M log")
    ap.add_argument("--quality-users", type=int, default=4000)
    ap.add_argument("--quality-epochs", type=int, default=2)
    ap.add_argument("--million-events", type=int, default=20_000,
                    help="events trained on in the 1M-item point")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads per process (default 1: the machine is shared)")
    ap.add_argument("--write", action="store_true", help="write docs/benchmarks.md section")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    for hidden in ("n", "nproc", "threads-per-rank", "probe", "users", "epochs"):
        ap.add_argument(f"--{hidden}", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--loss", help=argparse.SUPPRESS)
    ap.add_argument("--amp", type=lambda s: s == "True", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child_main(a)
        return
    points = [p.strip() for p in a.points.split(",") if p.strip()]
    unknown = sorted(set(points) - set(POINTS))
    if unknown:
        raise SystemExit(f"unknown point(s) {unknown}; known: {sorted(POINTS)}")
    t_all = time.perf_counter()
    rows: dict[str, list[dict]] = {p: [] for p in POINTS}
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
    if "quality" in points:
        rows["quality"] = [run_point("quality", loss=loss, users=a.quality_users,
                                     epochs=a.quality_epochs, threads=a.threads)
                           for loss in ("sampled", "ce")]
    if "million" in points:
        rows["million"] = [run_point("million", n=1_000_000, probe=a.million_events,
                                     threads=a.threads)]
    if "amp" in points:
        rows["amp"] = [run_point("amp", n=a.ddp_events, amp=amp, threads=a.threads)
                       for amp in (False, True)]
    total = time.perf_counter() - t_all
    body = report(rows, a, total)
    print(body)
    if a.write:
        write_section("scale", body)


def report(rows: dict[str, list[dict]], a, total_s: float) -> str:
    out = ["## Scaling: data-parallel training, big catalogues, Parquet scan", "",
           f"`{command()}` — {machine()}; whole run {total_s / 60:.1f} min. Each point ran "
           "in its own process (peak RSS is that process's own). The machine was shared with "
           "other developers' jobs while this ran (load average well above its 2 cores at "
           "times), so absolute times are pessimistic and noisy; compare rows within a table.",
           ""]
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
                "String ids, 30 events per user on average, "
                f"{LOG_ITEMS:,} items, users interleaved in global time order. "
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
                f"LSTM (dim {MODEL['dim']}), sampled softmax (1,024 popularity negatives), "
                f"one epoch over {_m(rows['ddp'][0]['predictions'])} predictions (a user slice "
                f"of the 1M log, {LOG_ITEMS:,} items), global batch 128 users. 2 processes = "
                "DistributedDataParallel over gloo on this machine, each rank 64 users of "
                "every batch. The machine has 2 cores, so 2 x 1 is the same CPU as 1 x 2; "
                "the gain of more processes shows on more cores or machines.", "",
                markdown_table(table, list(table[0])), ""]
    if rows["epoch"]:
        table = [{"events": _m(r["n"]), "epoch s": r["epoch_s"],
                  "how": ("projected from a measured epoch over "
                          f"{_m(r['measured_on'])} events" if r["projected"] else "measured"),
                  "events/s": r["events_per_s"], "scan s": r["scan_s"],
                  "peak RSS MB": r["peak_rss_mb"]} for r in rows["epoch"]]
        out += ["### Epoch time vs events", "",
                f"LSTM (dim {MODEL['dim']}) with sampled softmax, {a.threads} threads, data "
                "scanned from the Parquet log in the same process (peak RSS includes it).", "",
                markdown_table(table, list(table[0])), ""]
    if rows["quality"]:
        table = [{"loss": "sampled (1,024 popularity negatives, logQ)" if r["loss"] == "sampled"
                  else "full softmax", "NDCG@10": r["ndcg@10"], "HR@10": r["hr@10"],
                  "train s": r["train_s"], "peak RSS MB": r["peak_rss_mb"]}
                 for r in rows["quality"]]
        q = rows["quality"][0]
        out += ["### Sampled vs full softmax at 100k items", "",
                f"Synthetic shop generator, {q['users']:,} users, 100,000 items, "
                f"{q['events']:,} events; LSTM dim {MODEL['dim']}, {q['epochs']} epochs each "
                "(same data passes), leave-one-out test, full ranking, seen items filtered.",
                "", markdown_table(table, list(table[0])), ""]
    if rows["million"]:
        r = rows["million"][0]
        out += ["### Sampled softmax with 1,000,000 items", "",
                f"LSTM dim {MODEL['dim']} over 1,000,000 items (64M parameters in the item "
                f"table; AdamW keeps two more copies), one epoch of {r['predictions']:,} "
                f"predictions in {r['batches']} batches: {r['s_per_batch']:.2f} s per batch, "
                f"loss {r['loss']:.3f}, peak RSS {r['peak_rss_mb']:,.0f} MB (data included). "
                "Memory is bounded by the tables, not by the catalogue times the batch: the "
                "sampled loss scores 1,024 shared negatives per step.", ""]
    if rows["amp"]:
        table = [{"precision": "bf16 autocast" if r["amp"] else "float32",
                  "events/s": r["events_per_s"], "epoch loss": r["loss"]} for r in rows["amp"]]
        out += ["### bf16 autocast (TrainConfig.amp)", "",
                "Same slice as the throughput table, 1 process. The encoder runs under bf16 "
                "autocast, the loss in float32. This CPU has AVX512-BF16/AMX.", "",
                markdown_table(table, list(table[0])), ""]
    return "\n".join(out)


if __name__ == "__main__":
    main()
