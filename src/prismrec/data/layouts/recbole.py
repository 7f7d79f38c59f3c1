"""RecBole atomic files: ``<name>.inter`` (+ ``.item``, ``.text``) and the pre-split benchmark
form ``<name>.{train,valid,test}.inter`` used by UniSRec-style datasets.

Atomic files are tab-separated with a typed header (``field:type``); ``token_seq`` fields hold
space-separated tokens. In the pre-split form each row is (user, history, target): the
training file has one row per prefix, validation and test one row per user.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from prismrec.data._tables import read_header, read_table
from prismrec.data.catalog import Catalog
from prismrec.data.dataset import Dataset
from prismrec.data.layouts._common import (
    check_dir,
    listing,
    ordered_vocab,
    positional_interactions,
    split_tokens,
)
from prismrec.data.readers import read_events
from prismrec.data.sequences import Sequences
from prismrec.data.split import EvalCases, Split
from prismrec.data.vocab import Vocab
from prismrec.errors import DataError, UnknownIdError

log = logging.getLogger(__name__)

PARTS = ("train", "valid", "test")
_TITLE = ("title", "movie_title", "item_name", "name")
_DESCRIPTION = ("description", "abstract")
_CATEGORIES = ("categories", "category", "genre", "class")


def load(data_dir: Path, *, name: str | None = None, user_field: str = "user_id",
         item_field: str = "item_id", time_field: str = "timestamp",
         rating_field: str = "rating", strict: bool = True) -> Dataset:
    """A RecBole dataset named ``name`` (the file prefix; found automatically when unique)."""
    d = check_dir(data_dir, "recbole")
    name = name or _only_name(d)
    if (d / f"{name}.train.inter").exists():
        return _load_presplit(d, name, user_field, item_field)
    path = d / f"{name}.inter"
    if not path.exists():
        raise DataError(f"recbole: neither {name}.inter nor {name}.train.inter/.valid.inter/"
                        f".test.inter found in {d}; found: {listing(d)}")
    col = _fields(path)
    for need in (user_field, item_field):
        if need not in col:
            raise DataError(f"{path}: no {need!r} field in the header "
                            f"({', '.join(col.values())}); name the fields with user_field= / "
                            "item_field=")
    inter = read_events(path, format="tsv", user=col[user_field], item=col[item_field],
                        timestamp=col.get(time_field), value=col.get(rating_field), strict=strict)
    if time_field not in col:
        log.info("%s: no %r field; events are taken in file order", path, time_field)
    catalog = _catalog(d, name, item_field, None)
    return Dataset.from_interactions(name, inter, catalog, layout="recbole")


def _only_name(d: Path) -> str:
    names = sorted({p.name.split(".")[0] for p in d.glob("*.inter")})
    if len(names) != 1:
        found = ", ".join(names) if names else f"no .inter file (found: {listing(d)})"
        raise DataError(f"recbole: pass name= to choose the dataset in {d}: {found}")
    return names[0]


def _fields(path: Path) -> dict[str, str]:
    """Header ``field:type`` columns by field name."""
    out = {}
    for col in read_header(path, format="tsv"):
        out[col.split(":")[0]] = col
    return out


def _column(fields: dict[str, str], candidates) -> str | None:
    for c in candidates:
        if c in fields:
            return fields[c]
    return None


# ------------------------------------------------------------------ catalogue


def _catalog(d: Path, name: str, item_field: str, asin_to_id: pd.Series | None) -> Catalog | None:
    """From ``.item`` (typed fields) and/or ``.text`` (one text per item)."""
    cat = None
    item_path = d / f"{name}.item"
    if item_path.exists():
        fields = _fields(item_path)
        if item_field not in fields:
            raise DataError(f"{item_path}: no {item_field!r} field in the header")
        named = {"title": _column(fields, _TITLE),
                 "description": _column(fields, _DESCRIPTION),
                 "categories": _column(fields, _CATEGORIES),
                 "brand": _column(fields, ("brand",))}
        cols = [fields[item_field], *(c for c in named.values() if c)]
        f = read_table(item_path, cols, format="tsv", quoting=False).frame
        if named["categories"] and named["categories"].endswith(":token_seq"):
            f[named["categories"]] = f[named["categories"]].fillna("").str.split()
        cat = Catalog.from_frame(f, item=fields[item_field], source=str(item_path), **named)
    text_path = d / f"{name}.text"
    left_out = 0
    if text_path.exists():
        fields = _fields(text_path)
        text_col = _column(fields, ("text",)) or list(fields.values())[-1]
        t = read_table(text_path, [fields.get(item_field, list(fields.values())[0]), text_col],
                       format="tsv", quoting=False).frame
        t.columns = ["key", "text"]
        t["text"] = t["text"].fillna("").str.strip()
        if asin_to_id is not None:
            t["asin"] = t["key"]
            t["key"] = asin_to_id.reindex(t["key"].to_numpy()).to_numpy()
            unknown = t["key"].isna()
            if unknown.any():
                log.warning("%s: %d item(s) not in item2index are left out", text_path,
                            int(unknown.sum()))
                t = t[~unknown]
                left_out = int(unknown.sum())
        if cat is None:
            cat = Catalog.from_frame(t, item="key", title="text", source=str(text_path))
            if "asin" in t:
                cat.frame["asin"] = t["asin"].to_numpy()
        else:
            text = t.set_index(t["key"].astype(str))["text"]
            cat.frame["description" if "description" not in cat.frame else "text"] = (
                text.reindex(cat.frame.index).fillna("").to_numpy())
    if cat is not None and left_out:
        cat.frame.attrs["left_out"] = left_out
    return cat


# ------------------------------------------------------------------ pre-split benchmark files


def _read_index(path: Path) -> pd.Series:
    """``<token>\\t<index>`` lines as a Series index -> token, checked to be exactly 0..n-1."""
    t = read_table(path, ["token", "index"], format="tsv", names=["token", "index"],
                   quoting=False).frame
    idx = pd.to_numeric(t["index"], errors="coerce")
    if idx.isna().any() or not np.array_equal(np.sort(idx.to_numpy()), np.arange(len(t))):
        raise DataError(f"{path}: the indices must be the integers 0..{len(t) - 1}, each once")
    return pd.Series(t["token"].to_numpy(), index=idx.astype(np.int64).to_numpy()).sort_index()


def _load_presplit(d: Path, name: str, user_field: str, item_field: str) -> Dataset:
    item_index = d / f"{name}.item2index"
    user_index = d / f"{name}.user2index"
    asins = _read_index(item_index) if item_index.exists() else None
    user_tokens = _read_index(user_index) if user_index.exists() else None

    parts = {}
    for part in PARTS:
        path = d / f"{name}.{part}.inter"
        if not path.exists():
            need = ", ".join(f"{name}.{p}.inter" for p in PARTS)
            raise DataError(f"recbole: {path.name} is missing; a pre-split dataset needs "
                            f"{need} (found: {listing(d)})")
        fields = _fields(path)
        cols = [fields.get(user_field), fields.get(f"{item_field}_list"), fields.get(item_field)]
        if None in cols:
            raise DataError(f"{path}: expected fields {user_field}, {item_field}_list and "
                            f"{item_field}; found {', '.join(fields.values())}")
        t = read_table(path, cols, format="tsv", quoting=False)
        lengths, tokens = split_tokens(t.frame[cols[1]])
        parts[part] = (path, t.frame[cols[0]].to_numpy(dtype=object), lengths, tokens,
                       t.frame[cols[2]].to_numpy(dtype=object), t.lines)

    all_items = np.concatenate([np.concatenate([p[3], p[4]]) for p in parts.values()])
    all_users = np.concatenate([p[1] for p in parts.values()])
    items = (Vocab.from_list([str(i) for i in range(len(asins))]) if asins is not None
             else ordered_vocab(all_items))
    users = (Vocab.from_list([str(i) for i in range(len(user_tokens))])
             if user_tokens is not None else ordered_vocab(all_users))
    cases = {}
    for part, (path, u, lengths, tokens, target, lines) in parts.items():
        try:
            cases[part] = (users.index(u), lengths, items.index(tokens), items.index(target),
                           lines)
        except UnknownIdError as exc:
            raise DataError(f"{path}: {exc}, not listed in the index files") from exc

    seqs, train_len, windows = _rebuild(cases, len(users), parts)
    split = Split(
        "given",
        seqs.head(train_len),
        _eval_cases(*cases["valid"][:4], windows["valid"], seqs),
        _eval_cases(*cases["test"][:4], windows["test"], seqs),
    )
    catalog = None
    if (d / f"{name}.text").exists() or (d / f"{name}.item").exists():
        asin_to_id = (pd.Series(asins.index.astype(str), index=asins.to_numpy())
                      if asins is not None else None)
        catalog = _catalog(d, name, item_field, asin_to_id)
        if catalog is not None:
            left_out = catalog.frame.attrs.get("left_out", 0)
            catalog = Catalog(catalog.frame.reindex(
                [i for i in items if i in catalog.frame.index]))
    inter = positional_interactions(seqs, users, items)
    info = {"layout": "recbole", "pre_split": True,
            "test_history_events": int(split.test.history.n_events),
            "dropped": {"catalogue text rows of items not in item2index": left_out}
            if catalog is not None and left_out else {}}
    return Dataset(name, seqs, users, items, catalog, inter, split, False, info)


def _rebuild(cases: dict, n_users: int, parts: dict):
    """Each user's full sequence from the (history, target) rows, checked for consistency.

    A user's rows in time order are their training rows (oldest first), then validation, then
    test; the sequence is the first row's history followed by every row's target. Every
    row's history must then be the window just before its target (histories may be truncated
    to the last N items, which is why the training rows can hold more than the test history).
    Returns (sequences with positions as times, per-user training length, per-row positions).
    """
    n_train_rows = len(cases["train"][0])
    tu, tl = cases["train"][0], cases["train"][1]
    same = tu[1:] == tu[:-1]
    newest_first = bool((np.diff(tl)[same] < 0).any())
    if newest_first and (np.diff(tl)[same] > 0).any():
        raise DataError(f"{parts['train'][0]}: a user's training rows are neither oldest-first "
                        "nor newest-first")
    rank = -np.arange(n_train_rows) if newest_first else np.arange(n_train_rows)

    user = np.concatenate([cases[p][0] for p in PARTS])
    hlen = np.concatenate([cases[p][1] for p in PARTS])
    hist = np.concatenate([cases[p][2] for p in PARTS])
    target = np.concatenate([cases[p][3] for p in PARTS])
    part = np.repeat(np.arange(3), [len(cases[p][0]) for p in PARTS])
    rank = np.concatenate([rank, np.zeros(len(user) - n_train_rows, dtype=np.int64)])
    hoff = np.concatenate([[0], np.cumsum(hlen)])

    order = np.lexsort((rank, part, user))  # rows in time order, grouped by user
    n_rows = np.bincount(user, minlength=n_users)
    row_start = np.concatenate([[0], np.cumsum(n_rows)])[:-1]
    first = order[row_start[n_rows > 0]]  # earliest row of every user with rows
    first_len = np.zeros(n_users, dtype=np.int64)
    first_len[user[first]] = hlen[first]
    seq_len = first_len + n_rows
    offsets = np.concatenate([[0], np.cumsum(seq_len)]).astype(np.int64)

    seq = np.empty(offsets[-1], dtype=np.int64)
    u_first = user[first]
    within = np.arange(first_len.sum()) - np.repeat(np.cumsum(first_len[u_first]) -
                                                    first_len[u_first], first_len[u_first])
    seq[np.repeat(offsets[u_first], first_len[u_first]) + within] = (
        hist[np.repeat(hoff[first], first_len[u_first]) + within])
    j = np.empty(len(order), dtype=np.int64)  # index of each row within its user's rows
    j[order] = np.arange(len(order)) - np.repeat(row_start, n_rows)
    pos = first_len[user] + j  # position of each row's target in its user's sequence
    seq[offsets[user] + pos] = target

    # every history must be the window right before its target
    start = pos - hlen
    expect_at = np.repeat(offsets[user] + start, hlen) + (
        np.arange(hoff[-1]) - np.repeat(hoff[:-1], hlen))
    bad_rows = start < 0
    mismatch = np.zeros(len(user), dtype=bool)
    ok_events = np.repeat(~bad_rows, hlen)
    wrong = np.zeros(hoff[-1], dtype=bool)
    wrong[ok_events] = seq[expect_at[ok_events]] != hist[ok_events]
    mismatch[np.repeat(np.arange(len(user)), hlen)[wrong]] = True
    bad = bad_rows | mismatch
    if bad.any():
        r = int(np.flatnonzero(bad)[0])
        p = PARTS[part[r]]
        line = cases[p][4][r - np.flatnonzero(part == part[r])[0]]
        raise DataError(f"{parts[p][0]}, line {line}: the history is not the window of the "
                        "user's sequence before its target, so the files do not describe one "
                        "sequence per user")
    times = (np.arange(offsets[-1]) - np.repeat(offsets[:-1], seq_len)).astype(np.float64)
    seqs = Sequences(offsets, seq, times)
    train_len = first_len + np.bincount(cases["train"][0], minlength=n_users)
    windows = {p: (start[part == k], pos[part == k]) for k, p in enumerate(PARTS)}
    return seqs, train_len, windows


def _eval_cases(users: np.ndarray, hlen: np.ndarray, hist: np.ndarray, target: np.ndarray,
                window: tuple[np.ndarray, np.ndarray], seqs: Sequences) -> EvalCases:
    start, pos = window
    hoffsets = np.concatenate([[0], np.cumsum(hlen)]).astype(np.int64)
    htimes = (np.repeat(start, hlen) + np.arange(hoffsets[-1]) -
              np.repeat(hoffsets[:-1], hlen)).astype(np.float64)
    history = Sequences(hoffsets, hist.astype(np.int64), htimes)
    targets = Sequences(np.arange(len(users) + 1, dtype=np.int64), target.astype(np.int64),
                        pos.astype(np.float64))
    return EvalCases(np.asarray(users, dtype=np.int64), history, targets)
