"""What the decomposition costs per recommendation request, in process (no HTTP).

    python bench/serve_interests.py [--items 20000] [--history 50 200] [--repeats 15] [--write]

A GRU with an interest head (K=3, dim 32, 1 epoch: this measures cost, not quality) over a
synthetic catalogue of ``--items`` items; live users with ``--history`` logged events each
in a SQLite store. For each history length, the median wall time of one request of:
the plain route's work (``LiveProfiles.recommendations``: the stored state scored), the
stored-preference read every request makes, ``explain=true`` (the history read through the
model, the profile, and one scoring pass per distinct history item for the reasons),
``mute=`` (the list composed from the interests, explained), and the profile document.
One thread (torch.set_num_threads(1)), as the service's request threads run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

T0 = 1_700_000_000.0


def timed(fn, repeats: int) -> float:
    fn()  # warm
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return statistics.median(out) * 1e3


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--items", type=int, default=20_000)
    p.add_argument("--history", type=int, nargs="+", default=[50, 200])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--write", action="store_true", help="append to docs/benchmarks.md")
    args = p.parse_args()
    torch.set_num_threads(1)

    from prismrec.data.synthetic import generate
    from prismrec.explain.live_interests import LiveInterests
    from prismrec.profile import Event, open_store
    from prismrec.profile.live import LiveProfiles
    from prismrec.recommender import Recommender
    from prismrec.serve.interests import InterestRoutes

    data = generate(n_users=400, n_items=args.items, seed=1).to_dataset()
    rec = Recommender("gru", model_config={"dim": 32, "interests": 3},
                      train_config={"epochs": 1, "progress": False, "threads": 1, "seed": 0})
    rec.fit(data)
    items = rec.items_.to_list()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, \
            open_store(f"sqlite:///{Path(tmp) / 'p.db'}") as store:
        live = LiveProfiles(rec, store)
        answers = InterestRoutes(live, LiveInterests(rec, store))
        answers.interests.texts()  # built once per catalogue, at the first request
        for h in args.history:
            user = f"bench-{h}"
            live.update([Event(user, items[(7 * j) % len(items)], T0 + j) for j in range(h)])
            prof = answers.interests.profile(user, *answers.interests.history(user))
            common = dict(k=10, exclude=[], filter_seen=True, diversity=0.0,
                          diversity_given=False, boost=[], stored=[])
            cost = {
                "plain (stored state)": lambda u=user: live.recommendations(u, 10),
                "preference read": lambda u=user: store.preferences(u),
                "explain=true": lambda u=user: answers.recommend(
                    u, explain=True, mute=[], **common),
                "mute=<id>": lambda u=user, m=prof.interests[-1].component: answers.recommend(
                    u, explain=False, mute=[m], **common),
                "profile document": lambda u=user: answers.profile(u),
            }
            for name, fn in cost.items():
                rows.append((h, name, timed(fn, args.repeats)))
    table = ["| logged events | request | median ms |", "|---|---|---|"]
    table += [f"| {h} | {name} | {ms:.3f} |" for h, name, ms in rows]
    text = "\n".join(table)
    print(text)
    if args.write:
        cmd = "python bench/serve_interests.py " + " ".join(sys.argv[1:])
        section = (f"\n## Serving the decomposition: cost per request\n\n"
                   f"`{cmd}` ({args.items} items, GRU K=3 dim 32, one thread, in process; "
                   f"shared 2-core machine):\n\n{text}\n")
        path = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
        path.write_text(path.read_text(encoding="utf-8") + section, encoding="utf-8")


if __name__ == "__main__":
    main()
