"""Encoding a live profile's state: the ``safetensors`` library's numpy writer against a
hand-written one (the layout written directly), per state, for the state sizes serving sees.

    python bench/state_codec.py [--repeats 20000] [--write]

Prints microseconds per encode (median of 5 rounds) and the decode time for reference.
``--write`` puts the table in docs/benchmarks.md (section ``state_codec``).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
from _report import command, machine, markdown_table, write_section
from safetensors.numpy import load, save

from prismrec.profile.live.state import write_safetensors


def state(dim: int, layers: int, seen: int, recurrent: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {"meta": rng.random(7), "hidden": rng.random(dim, dtype=np.float32),
           "recent_items": rng.integers(0, 10_000, 11), "recent_times": rng.random(11),
           "seen": np.sort(rng.choice(100_000, seen, replace=False))}
    if recurrent:
        out["rnn"] = rng.random((2, layers, dim), dtype=np.float32)
    return out


def per_call(fn, arg, repeats: int) -> float:
    rounds = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(repeats):
            fn(arg)
        rounds.append((time.perf_counter() - t0) / repeats * 1e6)
    return float(np.median(rounds))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=20_000)
    p.add_argument("--write", action="store_true")
    args = p.parse_args()
    rows = []
    for name, st in (("LSTM 64-d, 1 layer, 50 seen", state(64, 1, 50, True)),
                     ("LSTM 256-d, 2 layers, 1000 seen", state(256, 2, 1000, True)),
                     ("SASRec 64-d, 50 seen", state(64, 1, 50, False))):
        a, b = save(st), write_safetensors(st)
        same = {k: v.tolist() for k, v in load(a).items()} == \
            {k: v.tolist() for k, v in load(b).items()}
        rows.append({"state": name, "bytes": len(a),
                     "safetensors.numpy.save (µs)": per_call(save, st, args.repeats),
                     "hand-written (µs)": per_call(write_safetensors, st, args.repeats),
                     "load (µs)": per_call(load, a, args.repeats), "same arrays": same})
    cols = list(rows[0])
    table = markdown_table(rows, cols)
    print(table)
    print(json.dumps(rows))
    if args.write:
        write_section("state_codec", f"## Live state encoding\n\n`{command()}` on "
                      f"{machine()}\n\n{table}\n")


if __name__ == "__main__":
    main()
