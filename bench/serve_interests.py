"""What the decomposition costs per recommendation request, in process (no HTTP).

    python bench/serve_interests.py [--items 5000 40000] [--history 50 200] [--repeats 15] \
        [--write]

A GRU with an interest head (K=3, dim 32, 1 epoch: this measures cost, not quality) over a
synthetic catalogue of each ``--items`` size (to show what grows with the catalogue); live
users with ``--history`` logged events each in a SQLite store. For each history length, the
median wall time of one request of: the plain route's work (``LiveProfiles.recommendations``:
the stored state scored), the stored-preference read every request makes, ``explain=true``
(the history read through the model, the profile, and one scoring pass per distinct history
item for the reasons), ``mute=`` (the list composed from the interests, explained), and the
profile document. One thread (torch.set_num_threads(1)), as the service's request threads run.
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
MEANING = """What this means for the service: the plain `GET /v1/users/{id}/recommendations` keeps
scoring the stored state plus one preference read (microseconds on SQLite). `explain=true`,
`mute=`/`boost=` and a *stored* preference read the user's whole history through the model
and attribute each item's score by occlusion (one scoring pass over the catalogue per
distinct history item), so they cost tens to hundreds of milliseconds, growing with the
history and the catalogue: that is why `explain` is off by default, and why a user with a
stored mute/boost pays this on every request (the README says so). The profile document
reads the history once; its per-catalogue work (catalogue text, titles, ids) is built once,
so its cost follows the history, not the catalogue size.
"""


def timed(fn, repeats: int) -> float:
    fn()  # warm
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return statistics.median(out) * 1e3


def measure(n_items: int, args) -> list[tuple]:
    from prismrec.data.synthetic import generate
    from prismrec.explain.live_interests import LiveInterests
    from prismrec.profile import Event, open_store
    from prismrec.profile.live import LiveProfiles
    from prismrec.recommender import Recommender
    from prismrec.serve.interests import InterestRoutes

    data = generate(n_users=400, n_items=n_items, seed=1).to_dataset()
    rec = Recommender("gru", model_config={"dim": 32, "interests": 3},
                      train_config={"epochs": 1, "progress": False, "threads": 1, "seed": 0})
    rec.fit(data)
    items = rec.items_.to_list()
    rows: list[tuple] = []
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
                "explain=true": lambda u=user, c=common: answers.recommend(
                    u, explain=True, mute=[], **c),
                "mute=<id>": lambda u=user, c=common, m=prof.interests[-1].component:
                    answers.recommend(u, explain=False, mute=[m], **c),
                "profile document": lambda u=user: answers.profile(u),
            }
            for name, fn in cost.items():
                rows.append((n_items, h, name, timed(fn, args.repeats)))
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--items", type=int, nargs="+", default=[5_000, 40_000])
    p.add_argument("--history", type=int, nargs="+", default=[50, 200])
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--write", action="store_true", help="append to docs/benchmarks.md")
    args = p.parse_args()
    torch.set_num_threads(1)


    rows = []
    for n_items in args.items:
        rows += measure(n_items, args)
    table = ["| items | logged events | request | median ms |", "|---|---|---|---|"]
    table += [f"| {n:,} | {h} | {name} | {ms:.3f} |" for n, h, name, ms in rows]
    text = "\n".join(table)
    print(text)
    if args.write:
        cmd = "python bench/serve_interests.py " + " ".join(sys.argv[1:])
        section = (f"\n## Serving the decomposition: cost per request\n\n"
                   f"`{cmd}` (GRU K=3 dim 32, one thread, in process; shared 2-core "
                   f"machine):\n\n{text}\n\n{MEANING}")
        path = Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md"
        doc = path.read_text(encoding="utf-8")
        head = "\n## Serving the decomposition: cost per request\n"
        if head in doc:  # replace the section this script wrote before
            start = doc.index(head)
            nxt = doc.find("\n## ", start + len(head))
            doc = doc[:start] + (doc[nxt:] if nxt >= 0 else "")
        path.write_text(doc.rstrip("\n") + "\n" + section, encoding="utf-8")


if __name__ == "__main__":
    main()
