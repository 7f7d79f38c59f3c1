"""Interest decomposition against the synthetic ground truth: purity, NMI, switch delay, NDCG.

The synthetic shop records which interest (category) drove every event. Three ways to split a
user's history into K components, all on the same LSTM encoder and the same data:

- ``decay``: the streaming interest head (models/interest.py): per-user online clustering of
  the user's own item vectors, event -> argmax of its routing share; the composed vector is
  the LSTM's own ``h`` plus a weighted interest residual;
- ``comirec``: the ComiRec-SA head (K global attention directions), event -> argmax of its
  attention from the last position;
- ``single+kmeans``: the single-vector LSTM, and k-means (K clusters) on the item vectors of
  each user's history.

Purity (event-weighted) and NMI (mean over users) compare each user's event -> component map
with the true active interest, over users whose history holds at least two true interests
(for one interest both are trivially perfect), on each history's last ``WINDOW`` events (the
ComiRec window). "Switch delay": where a true interest first appears after at least 5 events
of others, the number of events (counting the first) until the component that carries that
interest's events has the largest weight; "never" if it does not within the history.
NDCG@10 / Recall@50: leave-one-out, full ranking, seen items filtered. Writes the
`interests` section of docs/benchmarks.md.

    python bench/interests.py [--users 1500] [--k 4] [--epochs 30] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _report import command, machine, markdown_table, write_section
from sklearn.cluster import KMeans
from sklearn.metrics import normalized_mutual_info_score

from prismrec.data.sequences import Sequences
from prismrec.data.split import leave_one_out
from prismrec.data.synthetic import generate
from prismrec.eval import evaluate
from prismrec.models import build_model
from prismrec.models.interest import ROUTE_THRESHOLD
from prismrec.train.config import TrainConfig
from prismrec.train.inference import score_sequences
from prismrec.train.trainer import Trainer

WINDOW = 100  # events per history that are scored (and the ComiRec attention window)
MIN_BEFORE = 5  # a "new" interest must follow at least this many events of others
BUDGET_S = 90.0  # training time per model


class _Scorer:
    def __init__(self, model) -> None:
        self.model = model

    def score(self, users: np.ndarray, histories: Sequences) -> np.ndarray:
        return score_sequences(self.model, histories).numpy()


def truth_sequences(data, dataset) -> Sequences:
    """The true interest of every event, aligned with ``dataset.sequences``."""
    f = data.interactions.frame
    u = np.asarray(dataset.users.add(f["user"].to_numpy()), dtype=np.int64)  # known ids
    return Sequences.from_arrays(u, f["interest"].to_numpy().astype(np.int64),
                                 f["timestamp"].to_numpy(), len(dataset.users))


def train(name: str, cfg: dict, split, n_items: int, epochs: int,
          budget: float = BUDGET_S) -> tuple[object, float, str]:
    torch.manual_seed(0)
    model = build_model(name, n_items, cfg)
    tc = TrainConfig(epochs=epochs, lr=2e-3, batch_size=64, patience=4, progress=False,
                     threads=None, max_seconds=budget)
    t0 = time.perf_counter()
    res = Trainer(tc).fit(model, split.train, split.valid)
    return model.eval(), time.perf_counter() - t0, f"{res.best_epoch}/{res.epochs}"


@torch.no_grad()
def head_components(model, hist: Sequences,
                    batch: int = 256) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per user: component of each of the last WINDOW events, and weights after each."""
    rows = [hist.row(r)[-WINDOW:] for r in range(len(hist))]
    assign, weights = [], []
    for b0 in range(0, len(rows), batch):
        part = rows[b0:b0 + batch]
        lens = np.array([len(r) for r in part])
        x = np.zeros((len(part), max(int(lens.max()), 1)), dtype=np.int64)
        for i, r in enumerate(part):
            x[i, :len(r)] = r
        it = model.interests(torch.from_numpy(x), torch.from_numpy(lens))
        for i, n in enumerate(lens):
            assign.append(it.assignment[i, :n].argmax(-1).numpy())
            weights.append(it.weight_history[i, :n].numpy())
    return assign, weights


def kmeans_components(model, hist: Sequences, k: int) -> list[np.ndarray]:
    table = model.output_table().detach().numpy()
    out = []
    for r in range(len(hist)):
        items = hist.row(r)[-WINDOW:]
        x = table[items]
        n_clusters = min(k, len(np.unique(items)))
        if n_clusters < 2:
            out.append(np.zeros(len(items), dtype=np.int64))
            continue
        km = KMeans(n_clusters=n_clusters, n_init=3, random_state=0).fit(x)
        out.append(km.labels_.astype(np.int64))
    return out


def purity_nmi(assign: list[np.ndarray], truth: list[np.ndarray]) -> dict:
    hit = total = 0
    nmis = []
    for a, y in zip(assign, truth, strict=True):
        if len(np.unique(y)) < 2:
            continue
        for c in np.unique(a):
            hit += np.bincount(y[a == c]).max()
        total += len(y)
        nmis.append(normalized_mutual_info_score(y, a))
    return {"purity": hit / max(total, 1), "nmi": float(np.mean(nmis)), "users": len(nmis)}


def switch_delays(assign: list[np.ndarray], weights: list[np.ndarray],
                  truth: list[np.ndarray]) -> dict:
    delays = []
    for a, w, y in zip(assign, weights, truth, strict=True):
        seen: set[int] = set()
        for s, c in enumerate(y):
            if c in seen:
                continue
            seen.add(int(c))
            if s < MIN_BEFORE:
                continue
            comp = np.bincount(a[y == c], minlength=w.shape[1]).argmax()
            top = w[s:].argmax(1) == comp
            delays.append(int(np.argmax(top)) + 1 if top.any() else -1)
    d = np.asarray(delays)
    ok = d[d > 0]
    return {"switches": len(d), "median_delay": float(np.median(ok)) if len(ok) else np.nan,
            "mean_delay": float(ok.mean()) if len(ok) else np.nan,
            "within_3": float((d[d > 0] <= 3).sum() / max(len(d), 1)),
            "never": float((d < 0).mean()) if len(d) else np.nan}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, default=1500)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--only", nargs="*", default=None, help="variants to run (implies "
                    "--no-write)")
    ap.add_argument("--budget", type=float, default=BUDGET_S, help="training seconds per model")
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    data = generate(n_users=args.users, seed=0)
    ds = data.to_dataset()
    split = leave_one_out(ds.sequences)
    truth_all = truth_sequences(data, ds)
    cases = split.test
    hist = cases.history
    truth_hist = truth_all.take(cases.users).head(hist.lengths)
    truth = [truth_hist.row(r)[-WINDOW:] for r in range(len(truth_hist))]
    n_items = len(ds.items)
    base = {"dim": args.dim, "dropout": 0.3, "hidden_dropout": 0.3}
    variants = {
        "single+kmeans": {**base},
        "decay": {**base, "interests": args.k, "interest_head": "decay"},
        "comirec": {**base, "interests": args.k, "interest_head": "comirec",
                    "interest_window": WINDOW},
    }
    rows = []
    if args.only:
        variants = {k: v for k, v in variants.items() if k in args.only}
        args.no_write = True
    for label, cfg in variants.items():
        model, seconds, epochs = train("lstm", cfg, split, n_items, args.epochs, args.budget)
        rep = evaluate(_Scorer(model), cases, ks=(10, 50), n_bootstrap=0)
        row = {"components": label, "ndcg@10": rep.metrics["ndcg@10"],
               "recall@50": rep.metrics["recall@50"], "train_s": seconds, "epochs": epochs}
        t0 = time.perf_counter()
        if label == "single+kmeans":
            assign = kmeans_components(model, hist, args.k)
            row.update(purity_nmi(assign, truth))
            row.update({"median_delay": "n/a", "within_3": "n/a", "never": "n/a"})
        else:
            assign, weights = head_components(model, hist)
            row.update(purity_nmi(assign, truth))
            row.update(switch_delays(assign, weights, truth))
        row["assign_s"] = time.perf_counter() - t0
        rows.append(row)
        if label == "decay":  # the same embeddings split by k-means: routing vs clustering
            km = {"components": "decay model, k-means", "ndcg@10": row["ndcg@10"],
                  "recall@50": row["recall@50"], "train_s": seconds, "epochs": epochs,
                  **purity_nmi(kmeans_components(model, hist, args.k), truth),
                  "median_delay": "n/a", "within_3": "n/a", "never": "n/a"}
            rows.append(km)
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()},
              flush=True)

    cols = ["components", "purity", "nmi", "users", "median_delay", "within_3", "never",
            "ndcg@10", "recall@50", "train_s", "epochs"]
    table = markdown_table(rows, cols)
    print(table)
    if args.no_write:
        return
    body = f"""## Interest decomposition on synthetic data (ground truth)

`{command()}` on {machine()}.

Synthetic shop (`generate(n_users={args.users}, seed=0)`: {ds.sequences.n_events} events,
{n_items} items, 8 categories, 1-4 interests per user), leave-one-out. LSTM encoder
(dim {args.dim}) for all three; K = {args.k} components; up to {args.epochs} epochs or
{args.budget:.0f} s of training, early-stopped on validation NDCG@10. The decay head routes
each event to the user's own interest slots by cosine to their running centroids (threshold
{ROUTE_THRESHOLD} opens a new slot) and scores with the LSTM's `h` plus a weighted interest
residual; `decay model, k-means` splits the same model's item vectors with k-means instead
(same ranking numbers: it is the same model).
Purity (event-weighted) and NMI (mean per user) of each test user's event -> component
assignment against the true active interest, over the {rows[0]['users']} users whose last
{WINDOW} events hold at least two true interests. Switch delay: events from a true interest's
first appearance (after >= {MIN_BEFORE} events of others) until the component that carries it
has the largest weight (median; share of switches taken up within 3 events; share never).
`epochs`: best / run (the time budget stops most runs).
`single+kmeans` has no weights over time, so no switch delay. NDCG@10 / Recall@50: full
ranking of {n_items} items, seen items filtered.

{table}
"""
    write_section("interests", body)


if __name__ == "__main__":
    main()
