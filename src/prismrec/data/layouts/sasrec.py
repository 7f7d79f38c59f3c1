"""SASRec-style preprocessed sequences (one line per user, items oldest first), in the folder
layout of gSASRec's ``datasets/ml1m``: ``train/input.txt``, ``val/input.txt``,
``val/output.txt``, ``test/output.txt``, plus ``sas_to_original_items.txt`` for titles.

The copy in ``shared/data/ml-1m-sas`` lacks ``test/input.txt``: for users outside the
validation sample the second-to-last item is unknown. The given split is therefore the
skip-one protocol for every user: the test history ends two items before the last one (the
validation input for validation users, the training input for the others) and the target is
the last item. The missing item's position is kept free in ``times`` (positions, no clock).

``protocol="loo"`` is the field's leave-one-out on complete sequences instead: each user's
``train/input.txt`` row is the whole sequence, its last item the test target and its
second-to-last the validation target, for every user with at least 3 items. It differs from
the published ML-1M setup (SASRec, gSASRec, the RecSys'23 full cross-entropy study) in one way:
those rows end two items before each user's true end (three for the 512 users of gSASRec's
validation sample, whose rows also lack their validation input's last item), so every sequence
is two (three) items shorter and the test and validation targets are each user's third- and
fourth-to-last items of the original data (fourth- and fifth-to-last for those 512). The
other files are not read.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from prismrec.data.catalog import Catalog
from prismrec.data.dataset import Dataset
from prismrec.data.layouts._common import (
    check_dir,
    find,
    positional_interactions,
    read_lines,
    split_fields,
)
from prismrec.data.layouts.movielens import read_movies_dat
from prismrec.data.sequences import Sequences
from prismrec.data.split import EvalCases, Split
from prismrec.data.vocab import Vocab
from prismrec.errors import DataError

log = logging.getLogger(__name__)


PROTOCOLS = ("skip-one", "loo")


def load(data_dir: Path, *, movies: Path | None = None, protocol: str = "skip-one") -> Dataset:
    """Sequences, the split and (when ``movies.dat`` is found) titles and genres.

    ``protocol="skip-one"`` (the default) gives the files' own split as the given split;
    ``protocol="loo"`` gives no given split and the ``train/input.txt`` rows as the sequences,
    so the default split is leave-one-out on them (see the module docstring).
    ``movies`` defaults to ``../ml-1m/movies.dat`` beside ``data_dir``.
    """
    if protocol not in PROTOCOLS:
        raise DataError(f"sasrec: unknown protocol {protocol!r}; choose one of "
                        f"{', '.join(PROTOCOLS)}")
    d = check_dir(data_dir, "sasrec")
    train = _read_rows(find(d, "sasrec", "train/input.txt"))
    if protocol == "loo":
        return _load_loo(d, train, movies)
    test_out = _read_rows(find(d, "sasrec", "test/output.txt"))
    val_in = _read_rows(find(d, "sasrec", "val/input.txt"))
    val_out = _read_rows(find(d, "sasrec", "val/output.txt"))
    n_users = len(train)
    if len(test_out) != n_users or (test_out.lengths != 1).any():
        raise DataError(f"{d / 'test/output.txt'}: expected one item on each of {n_users} lines "
                        "(one per line of train/input.txt)")
    if len(val_out) != len(val_in) or (val_out.lengths != 1).any():
        raise DataError(f"{d / 'val/output.txt'}: expected one item per line of val/input.txt")
    val_users = _validation_users(train, val_in, d)

    mapping = d / "sas_to_original_items.txt"
    original = _read_mapping(mapping) if mapping.exists() else None
    if original is not None:
        n_items = int(original.index.max())
    else:
        n_items = int(max(train.items.max(), test_out.items.max(), val_in.items.max()))
    items = Vocab.from_list([str(i) for i in range(1, n_items + 1)])  # SAS id k -> index k-1
    users = Vocab.from_list([str(k + 1) for k in range(n_users)])  # line k -> user k+1
    for s in (train, test_out, val_in, val_out):
        if len(s.items) and (s.items.min() < 1 or s.items.max() > n_items):
            raise DataError(f"{d}: item ids must lie in 1..{n_items}")
    shift = (train, test_out, val_in, val_out)
    train, test_out, val_in, val_out = (
        Sequences(s.offsets, s.items - 1, s.times) for s in shift)

    # test history: validation input for validation users, training input for the others
    hist_rows = [train.row(u) for u in range(n_users)]
    for j, u in enumerate(val_users):
        hist_rows[u] = val_in.row(j)
    test_hist = Sequences.from_lists(hist_rows)
    gap_pos = test_hist.lengths + 1  # the unknown second-to-last item sits at lengths
    test_targets = Sequences(np.arange(n_users + 1, dtype=np.int64), test_out.items,
                             gap_pos.astype(np.float64))
    val_targets = Sequences(val_out.offsets, val_out.items, val_in.lengths.astype(np.float64))
    split = Split(
        "given",
        train,
        EvalCases(val_users, val_in, val_targets),
        EvalCases(np.arange(n_users, dtype=np.int64), test_hist, test_targets),
    )

    # full known sequence per user: test history, validation target (if known), last item
    known_mid = np.zeros(n_users, dtype=bool)
    known_mid[val_users] = True
    rows = [np.concatenate([test_hist.row(u),
                            val_out.row(int(np.searchsorted(val_users, u)))
                            if known_mid[u] else np.empty(0, np.int64),
                            test_out.row(u)]) for u in range(n_users)]
    times = [np.arange(len(r), dtype=np.float64) for r in rows]
    for u in np.flatnonzero(~known_mid):
        times[u][-1] += 1.0  # leave the missing second-to-last position free
    seqs = Sequences.from_lists(rows, times)

    catalog = _catalog(d, original, movies)
    info = {"layout": "sasrec", "protocol": "skip-one", "validation_users": len(val_users),
            "missing_second_to_last": int((~known_mid).sum())}
    inter = positional_interactions(seqs, users, items)
    return Dataset(d.name, seqs, users, items, catalog, inter, split, False, info)


def _load_loo(d: Path, train: Sequences, movies: Path | None) -> Dataset:
    """The ``train/input.txt`` rows as complete sequences (no given split)."""
    mapping = d / "sas_to_original_items.txt"
    original = _read_mapping(mapping) if mapping.exists() else None
    n_items = (int(original.index.max()) if original is not None
               else int(train.items.max(initial=0)))
    if len(train.items) and (train.items.min() < 1 or train.items.max() > n_items):
        raise DataError(f"{d / 'train/input.txt'}: item ids must lie in 1..{n_items}")
    items = Vocab.from_list([str(i) for i in range(1, n_items + 1)])  # SAS id k -> index k-1
    users = Vocab.from_list([str(k + 1) for k in range(len(train))])  # line k -> user k+1
    seqs = Sequences(train.offsets, train.items - 1, train.positions().astype(np.float64))
    info = {"layout": "sasrec", "protocol": "loo",
            "items_short_of_published": 2,  # rows end 2 items before the end (512: 3)
            "users_too_short_to_evaluate": int((train.lengths < 3).sum())}
    inter = positional_interactions(seqs, users, items)
    return Dataset(d.name, seqs, users, items, _catalog(d, original, movies), inter, None,
                   False, info)


def _read_rows(path: Path) -> Sequences:
    """Space-separated integer ids, one row per line (empty lines are empty rows)."""
    text = path.read_text(encoding="ascii", errors="strict")
    lines = text.splitlines()
    lengths = np.fromiter((len(ln.split()) for ln in lines), dtype=np.int64, count=len(lines))
    try:
        items = np.array(text.split(), dtype=np.int64)
    except ValueError as exc:
        raise DataError(f"{path}: expected space-separated integer item ids ({exc})") from exc
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    return Sequences(offsets, items, np.zeros(len(items), dtype=np.float64))


def _validation_users(train: Sequences, val_in: Sequences, d: Path) -> np.ndarray:
    """Which training line each validation line belongs to.

    The files do not list the users; a validation input is its user's training input plus
    one item, so it is found by matching that prefix.
    """
    by_row: dict[tuple, list[int]] = {}
    for u in range(len(train)):
        by_row.setdefault(tuple(train.row(u).tolist()), []).append(u)
    out = np.empty(len(val_in), dtype=np.int64)
    used: set[int] = set()
    for j in range(len(val_in)):
        cands = [u for u in by_row.get(tuple(val_in.row(j)[:-1].tolist()), []) if u not in used]
        if not cands:
            raise DataError(f"{d / 'val/input.txt'}, line {j + 1}: no line of train/input.txt "
                            "is this history without its last item, so its user is unknown")
        out[j] = cands[0]
        used.add(cands[0])
    if (np.diff(out) <= 0).any():
        log.info("%s: validation users are not in increasing order", d)
    return out


def _read_mapping(path: Path) -> pd.Series:
    parts = split_fields(read_lines(path), " ", 2, path)
    sas = pd.to_numeric(parts[0], errors="coerce")
    orig = parts[1].str.strip()
    if sas.isna().any():
        raise DataError(f"{path}: the first field must be an integer SAS item id")
    return pd.Series(orig.to_numpy(), index=sas.astype(np.int64).to_numpy())


def _catalog(d: Path, original: pd.Series | None, movies: Path | None) -> Catalog | None:
    if original is None:
        return None
    movies = Path(movies) if movies is not None else d.parent / "ml-1m" / "movies.dat"
    if not movies.exists():
        log.info("%s not found: ml-1m-sas is loaded without titles", movies)
        return None
    ml = read_movies_dat(movies).frame
    frame = ml.reindex(original.to_numpy())
    frame.index = pd.Index([str(k) for k in original.index], name="item")
    frame["movie_id"] = original.to_numpy()
    frame = frame[frame["title"].notna()].sort_index(key=lambda s: s.astype(int))
    return Catalog(frame)
