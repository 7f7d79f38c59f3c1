"""Ingest throughput of the profile stores: batches of 100 events, 1000 users, unique event ids."""
import random, shutil, socket, subprocess, sys, tempfile, time
from pathlib import Path
from prismrec.profile import Event, StoredState, open_store

def batches(n_batches, seed=0, size=100):
    rng = random.Random(seed); t = 1.7e9; out = []
    for b in range(n_batches):
        evs = []
        for k in range(size):
            t += rng.random()
            evs.append(Event(f"user{rng.randrange(1000)}", f"item{rng.randrange(50000)}", t,
                             event_id=f"b{b}-{k}"))
        out.append(evs)
    return out

def bench(url, n_batches=300):
    data = batches(n_batches)
    with open_store(url) as s:
        t0 = time.perf_counter()
        for b in data: s.append_events(b)
        dt = time.perf_counter() - t0
        t1 = time.perf_counter()
        for b in data[:100]: s.append_events(b)   # all duplicates
        dd = time.perf_counter() - t1
        users = [f"user{i}" for i in range(200)]
        t2 = time.perf_counter()
        for u in users: s.events(u)
        dr = time.perf_counter() - t2
        t3 = time.perf_counter()
        for u in users:
            s.put_state(u, StoredState(checkpoint="c", blob=b"x" * 4096, last_timestamp=0.0,
                                       n_events=s.event_count(u)))
        dp = time.perf_counter() - t3
    n = n_batches * 100
    print(f"{url.split('?')[0][:30]:30s} {url.split('?')[1] if '?' in url else '':20s} "
          f"ingest {n / dt:9.0f} ev/s ({dt / n_batches * 1e3:.2f} ms/batch)  "
          f"dup-ingest {100*100 / dd:9.0f} ev/s  events() {dr / 200 * 1e3:.2f} ms/user  "
          f"put_state {dp / 200 * 1e3:.2f} ms")

tmp = Path(tempfile.mkdtemp(dir=sys.argv[1] if len(sys.argv) > 1 else None))
for sync in ("normal", "full"):
    bench(f"sqlite:///{tmp}/{sync}.db?synchronous={sync}")
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no", "--dir", str(tmp)], stdout=subprocess.DEVNULL)
time.sleep(0.5)
try:
    bench(f"redis://127.0.0.1:{port}/0")
finally:
    p.terminate(); p.wait()
shutil.rmtree(tmp)
