"""Serving benchmark: live-profile update cost, HTTP recommend latency, HTTP ingest throughput.

    python bench/serve.py [--write] [--users 3000] [--seconds 15]

1. In-process ``LiveProfiles.update`` of one event (SQLite and Redis store): p50/p99.
2. HTTP ``GET /v1/users/{id}/recommendations`` on a 100,000-item synthetic catalogue, 10
   concurrent clients in a second process on 127.0.0.1: p50/p99 and requests/s, for the live
   path (score the stored state) and the naive path (re-run the model over the user's whole
   history per request, like RecBole's ``full_sort_topk``), same server, same users. Each
   live run is paired with a run of the server's no-op route just before it: the live p99 as
   a ratio to that no-op p99 (what this machine's noise does to any route) and the server's
   CPU time per request (from /proc), the median of ``--repeats`` pairs.
3. HTTP ``POST /v1/events`` with batches of 100 events, 4 concurrent clients: events/s, for
   the SQLite and the Redis store.

The model is trained minimally (1 epoch, dim 32, sampled softmax): this measures serving, not
recommendation quality. Server and clients share the machine's cores.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

T0 = 1_700_000_000.0
N_ITEMS = 100_000
SERVE_THREADS = 1  # torch threads per server process: requests run in parallel instead


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(xs, q) -> float:
    return float(np.percentile(np.asarray(xs) * 1e3, q))


# -- the server process (this script re-run with --_server) -------------------------------------


def naive_scores(live, user: str, k: int):
    """Recompute from the whole history per request: training row + the whole log."""
    import torch

    from prismrec.data.sequences import Sequences
    from prismrec.train.inference import score_sequences

    row = live.served.known_row(user)
    items = [] if row is None else row[0].tolist()
    times = [] if row is None else row[1].tolist()
    for e in live.store.events(user):
        if live.item_known(e.item):
            items.append(live.items.index_of(e.item))
            times.append(e.timestamp)
    order = np.argsort(times, kind="stable")
    items, times = np.asarray(items)[order], np.asarray(times)[order]
    scores = score_sequences(live.model, Sequences.from_lists([items], [times]))[0]
    if len(items):
        scores[torch.from_numpy(np.unique(items))] = -torch.inf
    top = torch.topk(scores, k)
    return live.items.ids(top.indices.numpy()), top.values.tolist()


def serve(checkpoint: str, store_url: str, port: int) -> None:
    import torch
    import uvicorn

    from prismrec.serve.worker import WorkerConfig, build, settle

    app = build(WorkerConfig(checkpoint, store_url, threads=SERVE_THREADS))
    live = app.state.live

    @app.get("/bench/noop/{user}")
    async def noop(user: str, k: int = 10) -> dict:
        """The floor: the same server and clients, no model, no store."""
        return {"user": user, "items": []}

    @app.get("/bench/naive/{user}")
    def naive(user: str, k: int = 10) -> dict:
        ids, scores = naive_scores(live, user, k)
        items = [{"item": i, "score": s} for i, s in zip(ids, scores, strict=True)]
        return {"user": user, "items": items}

    torch.set_num_threads(SERVE_THREADS)
    settle()  # as `prismrec serve` does
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


# -- the load generator (this script re-run with --_client) ------------------------------------


def load(url: str, kind: str, users: list[str], clients: int, max_requests: int,
         seconds: float) -> dict:
    """``clients`` concurrent keep-alive connections driven by one asyncio loop (raw HTTP/1.1:
    a client thread per connection spent as much CPU as the server, and waited for the GIL)."""
    import asyncio
    from urllib.parse import urlsplit

    host = urlsplit(url)
    lat: list[float] = []
    errors = [0]
    deadline = time.perf_counter() + seconds
    counter = iter(range(max_requests))

    def request(rng, j: int) -> bytes:
        if kind.startswith("ingest:"):  # ingest:U:RUN = 100 events over U users, run RUN
            n_users, run = map(int, kind.split(":")[1:])  # each run: new ids, later times
            who = rng.choice(len(users), size=n_users, replace=False)
            batch = [{"user": users[who[e % len(who)]], "item": f"i{rng.integers(N_ITEMS):05d}",
                      "timestamp": T0 + 1e6 * (1 + run) + j * 100 + e,
                      "event_id": f"bench-{run}-{j}-{e}"} for e in range(100)]
            body = json.dumps({"events": batch}).encode()
            return (b"POST /v1/events HTTP/1.1\r\nHost: bench\r\nContent-Type: "
                    b"application/json\r\nContent-Length: " + str(len(body)).encode() +
                    b"\r\n\r\n" + body)
        # warm-up (kind "...:warm") visits every user once, in order; the timed runs draw
        user = users[j % len(users)] if kind.endswith(":warm") else users[rng.integers(len(users))]
        path = (f"/bench/naive/{user}" if kind.startswith("naive") else
                f"/bench/noop/{user}" if kind.startswith("noop") else
                f"/v1/users/{user}/recommendations")
        return f"GET {path}?k=10 HTTP/1.1\r\nHost: bench\r\n\r\n".encode()

    async def client(c: int) -> None:
        rng = np.random.default_rng(c)
        reader, writer = await asyncio.open_connection(host.hostname, host.port)
        try:
            while time.perf_counter() < deadline:
                j = next(counter, None)
                if j is None:
                    return
                data = request(rng, j)
                t = time.perf_counter()
                writer.write(data)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                dt = time.perf_counter() - t
                fresh = not kind.startswith("ingest:") or b'"duplicates":0,' in body
                if head.startswith(b"HTTP/1.1 200") and fresh:  # a duplicate: a bench bug
                    lat.append(dt)
                else:
                    errors[0] += 1
        finally:
            writer.close()

    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(client(c) for c in range(clients)))
        return time.perf_counter() - start

    wall = asyncio.run(main())
    return {"n": len(lat), "errors": errors[0], "wall": wall, "p50": pct(lat, 50),
            "p90": pct(lat, 90), "p99": pct(lat, 99), "max": pct(lat, 100),
            "rps": len(lat) / wall}


def run_client(url: str, kind: str, users: list[str], clients: int, max_requests: int,
               seconds: float) -> dict:
    cmd = [sys.executable, __file__, "--_client", url, kind, json.dumps(users), str(clients),
           str(max_requests), str(seconds)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


class ServerProcess:
    """This script's server (the app plus the naive route), or with ``workers`` set the
    ``prismrec serve --workers N`` command itself."""

    def __init__(self, checkpoint: Path, store_url: str, workers: int | None = None) -> None:
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = ([sys.executable, __file__, "--_server", str(checkpoint), store_url,
                str(self.port)] if workers is None else
               [sys.executable, "-m", "prismrec.cli", "serve", "--checkpoint", str(checkpoint),
                "--store", store_url, "--port", str(self.port), "--workers", str(workers),
                "--threads", str(SERVE_THREADS)])
        self.proc = subprocess.Popen(cmd, start_new_session=True)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("benchmark server exited")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.2)
        raise RuntimeError("benchmark server did not start")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process has used so far (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)  # the group: uvicorn's workers too
        self.proc.wait(timeout=60)


# -- the benchmark ------------------------------------------------------------------------------


def train(folder: Path, n_users: int) -> Path:
    import torch

    from prismrec.data.synthetic import generate
    from prismrec.recommender import Recommender

    torch.set_num_threads(2)
    t = time.perf_counter()
    data = generate(n_users=n_users, n_items=N_ITEMS, events_per_user=20.0).to_dataset()
    rec = Recommender("lstm", model_config={"dim": 32},
                      train_config={"epochs": 1, "progress": False, "threads": 2,
                                    "loss": "sampled", "n_negatives": 1024}
                      ).fit(data, valid=False)
    path = rec.save(folder / "lstm-100k")
    print(f"trained on {data.sequences.n_events} events, {len(data.items)} items in "
          f"{time.perf_counter() - t:.0f} s", flush=True)
    return path


def library_update_latency(checkpoint: Path, n: int = 3000, repeats: int = 1) -> dict:
    """``Recommender.update`` of one event (in memory, no store), as a list of records and
    as a one-row DataFrame: the library's streaming path. ``repeats`` runs of ``n`` updates
    each; the median run by p99 is returned (``repeated``)."""
    import pandas as pd
    import torch

    from prismrec.recommender import Recommender

    torch.set_num_threads(SERVE_THREADS)
    rec = Recommender.load(checkpoint)
    users = [f"upd-{u}" for u in range(300)]
    rec.update([{"user": u, "item": "i00001", "timestamp": T0} for u in users])  # first sight
    rng = np.random.default_rng(0)
    out = {}
    t_next = T0 + 1
    for kind in ("records", "frame"):
        runs = []
        for _ in range(repeats):
            lat, cpu = [], []
            for _ in range(n):
                ev = {"user": users[rng.integers(len(users))],
                      "item": f"i{rng.integers(N_ITEMS):05d}", "timestamp": t_next}
                t_next += 1
                events = [ev] if kind == "records" else pd.DataFrame([ev])
                c, t = time.thread_time(), time.perf_counter()
                rec.update(events)
                lat.append(time.perf_counter() - t)
                cpu.append(time.thread_time() - c)
            runs.append({"n": n, "p50": pct(lat, 50), "p99": pct(lat, 99),
                         "cpu_p50": pct(cpu, 50), "cpu_p99": pct(cpu, 99)})
        out[kind] = repeated(runs, "p99", "min")
    return out


def update_latency(checkpoint: Path, store_url: str, n: int = 3000) -> dict:
    import torch

    from prismrec.profile import Event, open_store
    from prismrec.profile.live import LiveProfiles
    from prismrec.recommender import Recommender

    torch.set_num_threads(SERVE_THREADS)
    with open_store(store_url) as store:
        live = LiveProfiles(Recommender.load(checkpoint), store)
        users = [f"upd-{u}" for u in range(300)]
        live.update([Event(u, "i00001", T0, event_id=f"w-{u}") for u in users])  # first sight
        rng = np.random.default_rng(0)
        lat, cpu = [], []
        for j in range(n):
            ev = [Event(users[rng.integers(len(users))], f"i{rng.integers(N_ITEMS):05d}",
                        T0 + 1 + j, event_id=f"u-{j}")]
            c, t = time.thread_time(), time.perf_counter()
            live.update(ev)
            lat.append(time.perf_counter() - t)
            cpu.append(time.thread_time() - c)  # what this thread ran, not waits for a core
        # batches of 100 events over 100 users, without HTTP: the store and model work alone
        batch_users = [f"bat-{u}" for u in range(1000)]
        live.update([Event(u, "i00001", T0, event_id=f"wb-{u}") for u in batch_users])
        batches = []
        for j in range(50):
            who = rng.choice(len(batch_users), size=100, replace=False)
            ev = [Event(batch_users[w], f"i{rng.integers(N_ITEMS):05d}", T0 + 1e6 + j * 100 + e,
                        event_id=f"b-{j}-{e}") for e, w in enumerate(who)]
            t = time.perf_counter()
            live.update(ev)
            batches.append(time.perf_counter() - t)
    return {"n": n, "p50": pct(lat, 50), "p99": pct(lat, 99), "cpu_p50": pct(cpu, 50),
            "cpu_p99": pct(cpu, 99), "batch_p50": pct(batches, 50),
            "batch_p99": pct(batches, 99), "batch_rate": 100 / np.median(batches)}


def seed_histories(checkpoint: Path, store_url: str, users: list[str], length: int) -> None:
    from prismrec.profile import Event, open_store
    from prismrec.profile.live import LiveProfiles
    from prismrec.recommender import Recommender

    rng = np.random.default_rng(1)
    with open_store(store_url) as store:
        live = LiveProfiles(Recommender.load(checkpoint), store)
        for u in users:
            items = rng.integers(N_ITEMS, size=length)
            live.update([Event(u, f"i{i:05d}", T0 + j * 60.0, event_id=f"h-{u}-{j}")
                         for j, i in enumerate(items)])


def repeated(runs: list[dict], key: str, best: str) -> dict:
    """The median run by ``key`` (of an odd number), with every run's ``key`` in ``runs``."""
    ranked = sorted(runs, key=lambda r: r[key])
    out = dict(ranked[len(ranked) // 2])
    out["runs"] = [r[key] for r in runs]
    out["best"] = (max if best == "max" else min)(out["runs"])
    return out


def ingest(rows: list, server: ServerProcess, name: str, users: list[str], seconds: float,
           repeats: int) -> None:
    run = 0
    for per_batch in (100, 10):
        runs = []
        for _ in range(repeats if per_batch == 100 else 1):
            runs.append(run_client(server.url, f"ingest:{per_batch}:{run}", users, 4, 300,
                                   seconds))
            run += 1
        r = repeated(runs, "rps", "max")
        spread = ("" if len(runs) == 1 else ", runs: " +
                  " / ".join(f"{x * 100:,.0f}" for x in r["runs"]))
        rows.append({"what": f"HTTP ingest, batches of 100 events of {per_batch} users "
                             f"({name}, 4 clients)", "p50 ms": r["p50"], "p99 ms": r["p99"],
                     "throughput": f"{r['rps'] * 100:,.0f} events/s{spread} "
                                   f"({r['errors']} errors)",
                     "target": ">= 5,000 events/s"})
        print(rows[-1], flush=True)


def machine_jitter(seconds: float = 8.0) -> dict:
    """A fixed pure-Python work unit timed back to back for ``seconds``: this machine's own
    spread, and the share of the time it ran at under a third of its usual speed."""
    lat = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        sum(range(20_000))
        lat.append(time.perf_counter() - t)
    a = np.asarray(lat)
    slow = a[a > 3 * np.median(a)].sum() / a.sum()
    return {"n": len(a), "p50": pct(a, 50), "p99": pct(a, 99), "p999": pct(a, 99.9),
            "max": pct(a, 100), "slow": slow}


def recommend_in_process(checkpoint: Path, store_url: str, users: list[str],
                         n: int = 400) -> dict[str, dict]:
    """Both paths without HTTP, same users: the model work alone."""
    import torch

    from prismrec.profile import open_store
    from prismrec.profile.live import LiveProfiles
    from prismrec.recommender import Recommender

    torch.set_num_threads(SERVE_THREADS)
    out = {}
    with open_store(store_url) as store:
        live = LiveProfiles(Recommender.load(checkpoint), store)
        for u in users:  # warm: training states cached, as in a running server
            live.recommendations(u, 10)
        for kind, fn in (("live", lambda u: live.recommendations(u, 10)),
                         ("naive", lambda u: naive_scores(live, u, 10))):
            rng = np.random.default_rng(2)
            lat = []
            for _ in range(n):
                u = users[rng.integers(len(users))]
                t = time.perf_counter()
                fn(u)
                lat.append(time.perf_counter() - t)
            out[kind] = {"p50": pct(lat, 50), "p99": pct(lat, 99)}
    return out


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL)
    time.sleep(0.5)
    return proc, f"redis://127.0.0.1:{port}/0"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--users", type=int, default=3000, help="training users (synthetic)")
    p.add_argument("--seconds", type=float, default=15.0, help="time bound per HTTP phase")
    p.add_argument("--requests", type=int, default=3000, help="request bound per HTTP phase")
    p.add_argument("--history", type=int, default=200, help="logged events per live user")
    p.add_argument("--repeats", type=int, default=5,
                   help="runs of each phase with a target; the median run is reported")
    p.add_argument("--write", action="store_true", help="write docs/benchmarks.md")
    args = p.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch
    from _report import command, machine, markdown_table, write_section

    from prismrec.serve.settings import ServeSettings

    torch.set_num_threads(SERVE_THREADS)
    load_before = os.getloadavg()[0]
    tmp = Path(tempfile.mkdtemp(prefix="prismrec-bench-serve-"))
    redis_proc, redis_url = start_redis(tmp)
    rows = []
    try:
        j = machine_jitter()
        rows.append({"what": "this machine: one fixed pure-Python work unit (no prismrec)",
                     "p50 ms": j["p50"], "p99 ms": j["p99"],
                     "throughput": f"{j['n']} runs in 8 s; p99.9 {j['p999']:.1f} ms, max "
                                   f"{j['max']:.1f} ms; {j['slow']:.1%} of the time at < 1/3 "
                                   "speed", "target": ""})
        print(rows[-1], flush=True)
        ckpt = train(tmp, args.users)
        for kind, r in library_update_latency(ckpt, repeats=args.repeats).items():
            given = "a list of records" if kind == "records" else "a 1-row DataFrame"
            spread = ("" if args.repeats == 1 else
                      ", p99 of the runs: " + " / ".join(f"{x:.2f}" for x in r["runs"]))
            rows.append({"what": f"Recommender.update, 1 event as {given}, in memory",
                         "p50 ms": r["p50"], "p99 ms": r["p99"],
                         "throughput": f"{r['n']} updates{spread}",
                         "target": "p99 <= 1 ms" if kind == "records" else ""})
            rows.append({"what": "  same, CPU time of the updating thread", "p50 ms": r["cpu_p50"],
                         "p99 ms": r["cpu_p99"], "throughput": f"{r['n']} updates",
                         "target": ""})
            print(rows[-2:], flush=True)
        for name, url in (("sqlite", f"sqlite:///{tmp / 'upd.db'}"), ("redis", redis_url)):
            r = update_latency(ckpt, url)
            rows.append({"what": f"LiveProfiles.update, 1 event, durable ({name} store)",
                         "p50 ms": r["p50"], "p99 ms": r["p99"],
                         "throughput": f"{r['n']} updates", "target": ""})
            rows.append({"what": f"  same, CPU time of the updating thread ({name})",
                         "p50 ms": r["cpu_p50"], "p99 ms": r["cpu_p99"],
                         "throughput": f"{r['n']} updates", "target": ""})
            rows.append({"what": f"update, batches of 100 events of 100 users, in process "
                                 f"({name})", "p50 ms": r["batch_p50"], "p99 ms": r["batch_p99"],
                         "throughput": f"{r['batch_rate']:.0f} events/s", "target": ""})
            print(rows[-3:], flush=True)

        store_url = f"sqlite:///{tmp / 'serve.db'}"
        live_users = [f"live-{u}" for u in range(100)]
        seed_histories(ckpt, store_url, live_users, args.history)
        users = live_users + [f"u{u:04d}" for u in range(0, args.users, max(1, args.users // 100))]
        inproc = recommend_in_process(ckpt, store_url, users)
        for kind, r in inproc.items():
            rows.append({"what": f"recommend k=10, {kind} path, in process", "p50 ms": r["p50"],
                         "p99 ms": r["p99"], "throughput": "400 calls, sequential",
                         "target": ""})
            print(rows[-1], flush=True)
        server = ServerProcess(ckpt, store_url)
        try:
            res = {}
            for kind in ("live", "naive"):
                run_client(server.url, f"{kind}:warm", users, 10, len(users), 30)
                runs, noops = [], []
                for _ in range(args.repeats if kind == "live" else 1):
                    if kind == "live":  # the floor of this very minute, then the route
                        noops.append(run_client(server.url, "noop", users, 10, args.requests,
                                                args.seconds))
                    cpu = server.cpu_seconds()
                    runs.append(run_client(server.url, kind, users, 10, args.requests,
                                           args.seconds))
                    runs[-1]["cpu_ms"] = (server.cpu_seconds() - cpu) / runs[-1]["n"] * 1e3
                    if noops:
                        runs[-1]["ratio"] = runs[-1]["p99"] / noops[-1]["p99"]
                res[kind] = r = repeated(runs, "p99", "min")
                spread = ("" if len(runs) == 1 else
                          ", p99 of the runs: " + " / ".join(f"{x:.1f}" for x in r["runs"]))
                rows.append({"what": f"HTTP recommend k=10, {kind} path (10 clients)",
                             "p50 ms": r["p50"], "p99 ms": r["p99"],
                             "throughput": f"{r['rps']:.0f} req/s ({r['n']} req, "
                                           f"{r['errors']} errors{spread})",
                             "target": ""})
                print(rows[-1], flush=True)
                if kind != "live":
                    continue
                res["noop"] = r = repeated(noops, "p99", "min")
                rows.append({"what": "HTTP no-op route of the same server (no model, no store), "
                                     "run just before each live run",
                             "p50 ms": r["p50"], "p99 ms": r["p99"],
                             "throughput": f"{r['rps']:.0f} req/s ({r['n']} req, p99 of the "
                                           "runs: " + " / ".join(f"{x:.1f}" for x in r["runs"])
                                           + ")", "target": ""})
                res["ratio"] = q = repeated(runs, "ratio", "min")
                rows.append({"what": "**HTTP recommend p99 / no-op p99, same run** (median of "
                                     f"{len(runs)} pairs)", "p50 ms": "", "p99 ms": "",
                             "throughput": f"**{q['ratio']:.2f}** (pairs: " + " / ".join(
                                 f"{x:.2f}" for x in q["runs"]) + ")",
                             "target": "<= 2.0"})
                res["cpu"] = c = repeated(runs, "cpu_ms", "min")
                rows.append({"what": "**server CPU per recommend request** (user + system, "
                                     f"median of {len(runs)} runs)", "p50 ms": "", "p99 ms": "",
                             "throughput": f"**{c['cpu_ms']:.2f} ms** (runs: " + " / ".join(
                                 f"{x:.2f}" for x in c["runs"]) + ")",
                             "target": "<= 0.5 ms"})
                print(rows[-3:], flush=True)
            ratio = res["naive"]["p50"] / res["live"]["p50"]
            ratio99 = res["naive"]["p99"] / res["live"]["p99"]
            ingest_users = [f"ing-{u}" for u in range(900)] + users[-100:]
            ingest(rows, server, "sqlite", ingest_users, args.seconds, args.repeats)
        finally:
            server.stop()
        server = ServerProcess(ckpt, store_url, workers=2)  # the same file, two processes
        try:
            for _ in range(2):  # each worker warms its own caches
                run_client(server.url, "live:warm", users, 10, len(users), 30)
            runs = [run_client(server.url, "live", users, 10, args.requests, args.seconds)
                    for _ in range(args.repeats)]
            r = two = repeated(runs, "p99", "min")
            rows.append({"what": "HTTP recommend k=10, live path, `prismrec serve --workers 2` "
                                 "(10 clients)", "p50 ms": r["p50"], "p99 ms": r["p99"],
                         "throughput": f"{r['rps']:.0f} req/s ({r['n']} req, {r['errors']} "
                                       "errors, p99 of the runs: " +
                                       " / ".join(f"{x:.1f}" for x in r["runs"]) + ")",
                         "target": "p99 <= 15 ms"})
            print(rows[-1], flush=True)
        finally:
            server.stop()
        server = ServerProcess(ckpt, redis_url)
        try:
            ingest(rows, server, "redis", ingest_users, args.seconds, args.repeats)
        finally:
            server.stop()
    finally:
        redis_proc.terminate()
        redis_proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    load_after = os.getloadavg()[0]
    busy = ("" if max(load_before, load_after) < 2 else
            " **Other jobs were using the cores during this run: every figure here is an upper "
            "bound for latency and a lower bound for throughput.**")
    body = f"""## Serving: live profiles over HTTP

`{command()}` on {machine()}. Server: one uvicorn process (httptools parser, uvloop event
loop: the `serve` extra installs both), torch with {SERVE_THREADS} thread; for the row that
says so, `prismrec serve --workers 2`: two such processes on the same SQLite file. The two hot
routes are async. Recommendation requests that reach the event loop together are computed as one
batch, one batch at a time; while the service is busy a batch first waits
{ServeSettings().batch_window_ms:g} ms (`batch_window_ms`) for company, so that the clients just
answered can join it (`prismrec.serve.batching.LoopBatcher`,
`LiveProfiles.start_recommendations`: the store reads -- one for the batch's states, one for
its stored preferences --, one (B, D + 1) x (D + 1, N) product with a transposed item table
whose last row is the output bias, one block top-k over the batch and the reasons on a scoring
thread, which frees the loop meanwhile), and their route reads its own query instead of
FastAPI's per-request parameter solving (`prismrec.serve.routes.PlainRoute`) and writes its
reply as JSON bytes with the parts that repeat (item id and title, reason) encoded once
(`prismrec.serve.reply`); ingest batches run on one worker thread. Clients: one asyncio
process on the same machine with 10 keep-alive connections (raw HTTP/1.1, so that the load
generator costs little), competing with the server for the 2 cores. 1-minute load average
{load_before:.1f} before the run and {load_after:.1f}
after it (above 2 means other work shared the cores; it shows mostly in p99).{busy}

Each phase with a target runs {args.repeats} times (over HTTP a fresh client process each time;
fresh event ids and later timestamps for ingest) and the median run is shown, with every run's
figure beside it: the speed of this machine's cores drifts from minute to minute, and its
own tail is wide -- the first row times a fixed pure-Python loop, no prismrec code in it.
An ingest reply that reports duplicates counts as an error (the load must be fresh events).

Model: LSTM, dim 32, trained for **1 epoch** with sampled softmax on {args.users} synthetic
users over a **100,000-item** catalogue -- the point is serving cost, not quality. "live" scores
the stored profile state (one dot product with the item table, top-k, seen filter, reasons);
"naive" re-runs the model over the user's whole history (training history + logged events,
{args.history} logged events for the 100 live users) on every request, as RecBole's
`full_sort_topk` does. Users are drawn uniformly from 100 live users and 100 training users,
after a warm-up that visits each once. Naive/live ratio:
{inproc["naive"]["p50"] / inproc["live"]["p50"]:.1f}x at p50 in process (model work alone),
{ratio:.1f}x at p50 and {ratio99:.1f}x at p99 over HTTP.

Updates: `Recommender.update` is the library's streaming path (in memory: one LSTM step
through the model's own cells, no re-reading of the history), for one event of one of 300
already-seen users. `LiveProfiles.update` is the service's durable path: the same step plus
the store (ingest transaction, read of the state, compare-and-set write of the state; the
events just logged are handed over, not read back); then batches of 100 events over 100
of 1,000 already-seen users.
HTTP ingest: 4 clients posting batches of 100 events spread over 100 or over 10 distinct
users, drawn from 1,000 users (900 new, 100 with training histories; first sight of one of
those runs the model over the history once). A batch costs three store round trips however
many users it touches (ingest, read the states, write them; the ingest hands its events to the
model, so the log is not read back) and one batched LSTM step per event position.

{markdown_table(rows, ["what", "p50 ms", "p99 ms", "throughput", "target"])}

Reading the recommend p99: the live path's median run had p90 {res["live"]["p90"]:.1f} ms and
p99 {res["live"]["p99"]:.1f} ms with one worker, p90 {two["p90"]:.1f} ms and p99
{two["p99"]:.1f} ms with two (`prismrec serve --workers 2` on the same SQLite file: the
Python work of parsing, routing and scoring runs on both cores, but with the load generator that
makes three busy processes on two cores; which of the two is faster changes from run to run).
The first row's loop, with no prismrec code in it, spent {j["slow"]:.1%} of its time at under a
third of its usual speed, in bursts of tens of milliseconds (p99.9 {j["p999"]:.1f} ms against a
median of {j["p50"]:.2f} ms). A burst slows the server and the clients at once, and the requests
in flight wait for it to drain, longer the more work each request is: the bench's no-op route in
the same server, same clients, kept p99 at {res["noop"]["p99"]:.1f} ms ({res["noop"]["rps"]:.0f}
req/s). That is why the recommend latency target is judged as a ratio: each live run is paired
with a no-op run of the same server a moment before it, and the median of the
{args.repeats} ratios of their p99 is {res["ratio"]["ratio"]:.2f} (target <= 2.0). Server CPU
per recommend request, from the server process's user + system time over a run divided by its
requests (the event loop, routing, the key check and limits, the store read, the scoring
thread): median {res["cpu"]["cpu_ms"]:.2f} ms (target <= 0.5 ms).
"""
    print(body)
    if args.write:
        write_section("serve", body)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--_server":
        serve(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--_client":
        print(json.dumps(load(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]),
                              int(sys.argv[5]), int(sys.argv[6]), float(sys.argv[7]))))
    else:
        main()
