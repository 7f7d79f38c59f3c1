"""Candidate search: the k items whose vectors score highest against each query vector.

``ExactIndex`` is a blocked torch matmul with exact top-k: every item is scored, so results
are the true answer and equal scores go to the lower item index on every run.
``FaissIndex`` (HNSW or IVF-Flat, the ``ann`` extra) trades a little recall for sub-linear
search on large catalogues. ``build_index`` picks one by catalogue size.

Every index answers ``search(queries, k, exclude=..., allowed_mask=...)`` with
``(scores (Q, k) float32, indices (Q, k) int64)``, best first. Where fewer than ``k`` items
are eligible (after exclusions and the mask), the row is padded with index -1 and score
-inf. ``add(vectors)`` appends items (cold-start items at serve time) without a rebuild.
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from prismrec.errors import CheckpointError, DataError, require
from prismrec.ranking import topk_numpy

log = logging.getLogger(__name__)

METRICS = ("ip", "cosine")
FAISS_KINDS = ("hnsw", "ivf")
INDEX_FORMAT = 1
_BLOCK_ELEMS = 1 << 24  # scores held at once by ExactIndex: 64 MB of float32


def _as_matrix(x: np.ndarray | torch.Tensor, what: str) -> np.ndarray:
    """A C-contiguous float32 (N, D) numpy array with finite values, or DataError."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    a = np.ascontiguousarray(x, dtype=np.float32)
    if a.ndim != 2:
        raise DataError(f"{what} must be a 2-d array (N, D), got shape {a.shape}")
    if a.shape[1] == 0:
        raise DataError(f"{what} must have at least one dimension, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise DataError(f"{what} contain NaN or infinite values; fix the vectors first")
    return a


def _unit(v: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1; zero rows stay zero (they score 0 against everything)."""
    norms = np.linalg.norm(v, axis=1, keepdims=True)  # (N, 1)
    return np.divide(v, norms, out=np.zeros_like(v), where=norms > 0)


def _check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _order(scores: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Positions sorting a sparse candidate list by score descending, equal scores by lower
    item index: the tie rule of ``prismrec.ranking.topk``, for FAISS's found lists."""
    return np.lexsort((ids, -scores))


class ItemIndex(ABC):
    """Search over item vectors; subclasses share input checks and the result layout."""

    metric: str

    @property
    @abstractmethod
    def dim(self) -> int:
        """Vector dimension D."""

    @abstractmethod
    def __len__(self) -> int:
        """Number of items N (indices 0..N-1)."""

    @abstractmethod
    def search(self, queries: np.ndarray | torch.Tensor, k: int, *,
               exclude: Sequence[np.ndarray | None] | None = None,
               allowed_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(scores (Q, k) float32, indices (Q, k) int64), best first.

        ``exclude[q]`` lists item indices query q must not get (e.g. its seen items);
        ``allowed_mask`` (N,) bool keeps only items marked True for every query.
        """

    @abstractmethod
    def score(self, queries: np.ndarray | torch.Tensor, items: np.ndarray) -> np.ndarray:
        """Exact scores (Q, M) float32 of each query against the given item indices."""

    @abstractmethod
    def add(self, vectors: np.ndarray | torch.Tensor) -> np.ndarray:
        """Append items; returns their new indices (M,) int64, continuing from len(self)."""

    # -- shared input checks -------------------------------------------------------------
    def _queries(self, queries: np.ndarray | torch.Tensor) -> np.ndarray:
        q = _as_matrix(queries, "queries")
        if q.shape[1] != self.dim:
            raise DataError(f"queries are {q.shape[1]}-d but the index holds {self.dim}-d "
                            f"item vectors")
        return _unit(q) if self.metric == "cosine" else q

    def _new_vectors(self, vectors: np.ndarray | torch.Tensor) -> np.ndarray:
        x = _as_matrix(vectors, "vectors")
        if x.shape[1] != self.dim:
            raise DataError(f"new vectors are {x.shape[1]}-d but the index holds "
                            f"{self.dim}-d item vectors")
        return _unit(x) if self.metric == "cosine" else x

    def _items(self, items: np.ndarray) -> np.ndarray:
        ids = np.asarray(items, dtype=np.int64).ravel()
        if len(ids) and (ids.min() < 0 or ids.max() >= len(self)):
            raise ValueError(f"item indices must be in [0, {len(self)}), got values from "
                             f"{ids.min()} to {ids.max()}")
        return ids

    def _filters(self, n_queries: int, exclude, allowed_mask
                 ) -> tuple[list[np.ndarray], np.ndarray | None]:
        """(per-query excluded indices, allowed mask or None), validated."""
        n = len(self)
        if exclude is None:
            ex = [np.zeros(0, dtype=np.int64)] * n_queries
        else:
            if len(exclude) != n_queries:
                raise ValueError(f"exclude has {len(exclude)} entries for {n_queries} queries; "
                                 f"give one array (or None) per query")
            ex = [np.zeros(0, dtype=np.int64) if e is None else self._items(e)
                  for e in exclude]
        allowed = None
        if allowed_mask is not None:
            allowed = np.asarray(allowed_mask)
            if allowed.dtype != np.bool_ or allowed.shape != (n,):
                raise ValueError(f"allowed_mask must be a bool array of shape ({n},), got "
                                 f"{allowed.dtype} {allowed.shape}")
        return ex, allowed


class ExactIndex(ItemIndex):
    """Every item scored by one matmul per block of queries; exact, deterministic top-k.

    ``metric="cosine"`` stores unit vectors and normalises queries, so scores are cosines;
    ``"ip"`` scores raw inner products (what a model trained with a dot-product softmax
    ranks by). Memory: the vectors (N x D float32) plus a 64 MB score block.
    """

    def __init__(self, item_vectors: np.ndarray | torch.Tensor, *, metric: str = "ip") -> None:
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        self.metric = metric
        x = _as_matrix(item_vectors, "item_vectors")
        x = _unit(x) if metric == "cosine" else x.copy()  # never alias the caller's array
        self._buf = torch.from_numpy(x)  # (capacity, D); rows [0, n) are items
        self._n = len(x)

    @property
    def dim(self) -> int:
        return int(self._buf.shape[1])

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"ExactIndex({self._n} items, dim={self.dim}, metric={self.metric!r})"

    @property
    def vectors(self) -> torch.Tensor:
        """The stored item vectors (N, D), unit length under cosine; a view, do not modify."""
        return self._buf[: self._n]

    def add(self, vectors: np.ndarray | torch.Tensor) -> np.ndarray:
        x = torch.from_numpy(self._new_vectors(vectors).copy())  # (M, D)
        n, m = self._n, len(x)
        if n + m > len(self._buf):  # grow by a quarter so repeated small adds stay cheap
            buf = torch.empty((max(n + m, len(self._buf) * 5 // 4 + 16), self.dim),
                              dtype=torch.float32)
            buf[:n] = self._buf[:n]
            self._buf = buf
        self._buf[n: n + m] = x
        self._n = n + m
        return np.arange(n, n + m, dtype=np.int64)

    def score(self, queries: np.ndarray | torch.Tensor, items: np.ndarray) -> np.ndarray:
        q = torch.from_numpy(self._queries(queries))  # (Q, D)
        ids = torch.from_numpy(self._items(items))  # (M,)
        return (q @ self.vectors[ids].T).numpy()  # (Q, M)

    def search(self, queries: np.ndarray | torch.Tensor, k: int, *,
               exclude: Sequence[np.ndarray | None] | None = None,
               allowed_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        q = self._queries(queries)
        k = _check_k(k)
        ex, allowed = self._filters(len(q), exclude, allowed_mask)
        n_q, n = len(q), self._n
        scores = np.full((n_q, k), -np.inf, dtype=np.float32)
        indices = np.full((n_q, k), -1, dtype=np.int64)
        if n == 0 or n_q == 0:
            return scores, indices
        kk = min(k, n)
        x = self.vectors
        step = max(1, _BLOCK_ELEMS // n)
        for lo in range(0, n_q, step):
            # Only the matmul runs in torch: on a busy machine torch's own thread pool makes
            # the follow-up elementwise passes slower than plain numpy (measured 3x at 100k).
            s = (torch.from_numpy(q[lo: lo + step]) @ x.T).numpy()  # (B, N)
            if allowed is not None:
                np.copyto(s, -np.inf, where=~allowed[None, :])
            for r, e in enumerate(ex[lo: lo + step]):
                if len(e):
                    s[r, e] = -np.inf
            val, idx = topk_numpy(s, kk)  # (B, kk) each, ties: lower index first
            scores[lo: lo + len(s), :kk] = val
            indices[lo: lo + len(s), :kk] = idx
        indices[np.isneginf(scores)] = -1  # ineligible items are padding, not results
        return scores, indices


class FaissIndex(ItemIndex):
    """Approximate search with FAISS: ``kind="hnsw"`` (graph) or ``"ivf"`` (IVF-Flat).

    Both keep the full float32 vectors, so returned scores are exact inner products (or
    cosines) and ``score`` is exact; only *which* items are found is approximate.

    Filters: ``allowed_mask`` is applied inside the FAISS search (an ID-selector bitmap);
    ``exclude`` (per-query) by over-fetching ``k + max(len(exclude[q]))`` results and
    dropping excluded ones. A query left with fewer survivors than it has eligible items
    (up to k) -- a strict mask can cut an HNSW walk short -- is re-answered exactly by
    scoring all its eligible items, so rows are never short while items remain.

    HNSW: ``hnsw_m`` links per node, ``ef_construction`` / ``ef_search`` beam widths (raise
    ``ef_search`` for recall). IVF: ``nlist`` clusters (default sqrt(N)) trained by k-means
    on a sample of 64 x nlist vectors, ``nprobe`` clusters scanned per query (default
    nlist / 16). FAISS uses as many OpenMP threads as ``torch.get_num_threads()``.
    """

    def __init__(self, item_vectors: np.ndarray | torch.Tensor, *, kind: str = "hnsw",
                 metric: str = "ip", hnsw_m: int = 32, ef_construction: int = 80,
                 ef_search: int = 64, nlist: int | None = None, nprobe: int | None = None,
                 seed: int = 0) -> None:
        faiss = _faiss()
        if kind not in FAISS_KINDS:
            raise ValueError(f"kind must be one of {FAISS_KINDS}, got {kind!r}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        for name, v in (("hnsw_m", hnsw_m), ("ef_construction", ef_construction),
                        ("ef_search", ef_search), ("nlist", nlist), ("nprobe", nprobe)):
            if v is not None and (not isinstance(v, (int, np.integer)) or v < 1):
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        x = _as_matrix(item_vectors, "item_vectors")
        if len(x) == 0:
            raise DataError("FaissIndex needs at least one item vector; use ExactIndex for "
                            "an empty catalogue")
        x = _unit(x) if metric == "cosine" else x
        self.kind, self.metric = kind, metric
        n, d = x.shape
        if kind == "ivf":
            nlist = nlist if nlist is not None else max(1, min(round(math.sqrt(n)), n // 39))
            if nlist > n:
                raise ValueError(f"nlist={nlist} is more than the {n} items to cluster")
            nprobe = min(nlist, nprobe if nprobe is not None else max(1, round(nlist / 16)))
        self.params: dict[str, Any] = (
            {"hnsw_m": int(hnsw_m), "ef_construction": int(ef_construction),
             "ef_search": int(ef_search)} if kind == "hnsw" else
            {"nlist": int(nlist), "nprobe": int(nprobe), "seed": int(seed)})
        _sync_threads(faiss)
        t0 = time.perf_counter()
        fmetric = faiss.METRIC_INNER_PRODUCT
        if kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, int(hnsw_m), fmetric)
            index.hnsw.efConstruction = int(ef_construction)
            index.hnsw.efSearch = int(ef_search)
        else:
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, int(nlist), fmetric)
            sample = np.random.default_rng(seed).choice(n, size=min(n, 64 * nlist),
                                                        replace=False)
            index.cp.seed = int(seed)
            index.cp.min_points_per_centroid = 1  # small catalogues: no stderr warning
            index.train(x[np.sort(sample)])
            index.nprobe = int(nprobe)
        index.add(x)
        if kind == "ivf":
            index.make_direct_map()  # lets `score` and the exact fallback read vectors back
        self.build_seconds = time.perf_counter() - t0
        self._index = index
        log.info("built FAISS %s index over %d x %d vectors in %.1f s", kind, n, d,
                 self.build_seconds)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def __repr__(self) -> str:
        return (f"FaissIndex({len(self)} items, dim={self.dim}, kind={self.kind!r}, "
                f"metric={self.metric!r}, {self.params})")

    @property
    def ef_search(self) -> int:
        """HNSW beam width at search time: higher finds more true neighbours, slower."""
        return self._search_param("ef_search", "hnsw")

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        self._set_search_param("ef_search", "hnsw", value)
        self._index.hnsw.efSearch = int(value)

    @property
    def nprobe(self) -> int:
        """IVF clusters scanned per query: higher finds more true neighbours, slower."""
        return self._search_param("nprobe", "ivf")

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self._set_search_param("nprobe", "ivf", value)
        self._index.nprobe = int(value)

    def _search_param(self, name: str, kind: str) -> int:
        if self.kind != kind:
            raise AttributeError(f"{name} is an option of {kind} indexes, this one is "
                                 f"{self.kind}")
        return int(self.params[name])

    def _set_search_param(self, name: str, kind: str, value: int) -> None:
        self._search_param(name, kind)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if name == "nprobe" and value > self.params["nlist"]:
            raise ValueError(f"nprobe={value} is more than the {self.params['nlist']} clusters")
        self.params[name] = int(value)

    def add(self, vectors: np.ndarray | torch.Tensor) -> np.ndarray:
        x = self._new_vectors(vectors)
        n = len(self)
        _sync_threads(_faiss())
        self._index.add(x)
        return np.arange(n, n + len(x), dtype=np.int64)

    def _vectors(self, ids: np.ndarray) -> np.ndarray:
        return self._index.reconstruct_batch(np.ascontiguousarray(ids, dtype=np.int64))

    def score(self, queries: np.ndarray | torch.Tensor, items: np.ndarray) -> np.ndarray:
        q = self._queries(queries)
        ids = self._items(items)
        return q @ self._vectors(ids).T  # (Q, M)

    def search(self, queries: np.ndarray | torch.Tensor, k: int, *,
               exclude: Sequence[np.ndarray | None] | None = None,
               allowed_mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        faiss = _faiss()
        q = self._queries(queries)
        k = _check_k(k)
        ex, allowed = self._filters(len(q), exclude, allowed_mask)
        n_q, n = len(q), len(self)
        scores = np.full((n_q, k), -np.inf, dtype=np.float32)
        indices = np.full((n_q, k), -1, dtype=np.int64)
        if n_q == 0:
            return scores, indices
        fetch = min(n, k + max(len(e) for e in ex))
        _sync_threads(faiss)
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.params["ef_search"], fetch))
        else:
            params = faiss.SearchParametersIVF(nprobe=self.params["nprobe"])
        bits = None
        if allowed is not None:
            bits = np.packbits(allowed, bitorder="little")  # kept alive during the search
            params.sel = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))
        dist, found = self._index.search(q, fetch, params=params)  # (Q, fetch) each
        n_allowed = n if allowed is None else int(allowed.sum())
        fallbacks = 0
        for r in range(n_q):
            e = np.unique(ex[r])
            f, d = found[r], dist[r]
            keep = f >= 0
            if len(e):
                keep &= ~np.isin(f, e)
            f, d = f[keep], d[keep]
            n_eligible = n_allowed - (len(e) if allowed is None else int(allowed[e].sum()))
            want = min(k, n_eligible)
            if len(f) < want:  # the approximate search came up short: answer exactly
                fallbacks += 1
                f, d = self._exact(q[r], want, allowed, e)
            o = _order(d, f)[:want]
            indices[r, :want], scores[r, :want] = f[o], d[o]
        if fallbacks:
            log.debug("FaissIndex.search: %d of %d queries re-answered exactly", fallbacks,
                      n_q)
        return scores, indices

    def _exact(self, query: np.ndarray, k: int, allowed: np.ndarray | None,
               excluded: np.ndarray, chunk: int = 65536) -> tuple[np.ndarray, np.ndarray]:
        """(indices, scores) of the exact top-k over eligible items, read back in chunks."""
        ok = np.ones(len(self), dtype=bool) if allowed is None else allowed.copy()
        ok[excluded] = False
        ids = np.flatnonzero(ok)
        s = np.concatenate([self._vectors(ids[lo: lo + chunk]) @ query
                            for lo in range(0, len(ids), chunk)] or [np.zeros(0, np.float32)])
        o = _order(s, ids)[:k]
        return ids[o], s[o].astype(np.float32)

    # -- persistence ---------------------------------------------------------------------
    def save(self, folder: str | os.PathLike, name: str = "item_index") -> Path:
        """Write ``<folder>/<name>.faiss`` (FAISS's own format) and ``<name>.json``.

        No pickle. Each file is written to a temporary name first and renamed, so a crash
        leaves the previous files intact. Returns the folder.
        """
        faiss = _faiss()
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"format": INDEX_FORMAT, "kind": self.kind, "metric": self.metric,
                "dim": self.dim, "n_items": len(self), "params": self.params,
                "build_seconds": self.build_seconds, "faiss_version": faiss.__version__}
        tmp = folder / f".{name}.faiss.tmp"
        faiss.write_index(self._index, str(tmp))
        os.replace(tmp, folder / f"{name}.faiss")
        tmp = folder / f".{name}.json.tmp"
        tmp.write_text(json.dumps(meta, indent=2))
        os.replace(tmp, folder / f"{name}.json")
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike, name: str = "item_index") -> FaissIndex:
        """Read an index written by ``save``; CheckpointError if missing or inconsistent."""
        faiss = _faiss()
        folder = Path(folder)
        meta_path, index_path = folder / f"{name}.json", folder / f"{name}.faiss"
        for p in (meta_path, index_path):
            if not p.is_file():
                raise CheckpointError(f"{p} not found; write it with FaissIndex.save")
        try:
            meta = json.loads(meta_path.read_text())
            kind, metric, params = meta["kind"], meta["metric"], dict(meta["params"])
            dim, n_items = int(meta["dim"]), int(meta["n_items"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{meta_path} is not valid index metadata: {exc}") from exc
        if meta.get("format") != INDEX_FORMAT or kind not in FAISS_KINDS \
                or metric not in METRICS:
            raise CheckpointError(f"{meta_path}: unsupported index (format "
                                  f"{meta.get('format')!r}, kind {kind!r}, metric {metric!r})")
        try:
            index = faiss.read_index(str(index_path))
        except RuntimeError as exc:
            raise CheckpointError(f"{index_path} is not a readable FAISS index: {exc}") from exc
        if index.ntotal != n_items or index.d != dim:
            raise CheckpointError(f"{index_path} holds {index.ntotal} x {index.d} vectors but "
                                  f"{meta_path} says {n_items} x {dim}")
        self = cls.__new__(cls)
        self.kind, self.metric, self.params = kind, metric, params
        self.build_seconds = float(meta.get("build_seconds", float("nan")))
        if kind == "ivf":
            index.make_direct_map()
            index.nprobe = int(params["nprobe"])
        else:
            index.hnsw.efSearch = int(params["ef_search"])
        self._index = index
        return self


def _faiss():
    return require("faiss", "ann")


def _sync_threads(faiss) -> None:
    faiss.omp_set_num_threads(torch.get_num_threads())


_FAISS_OPTIONS = frozenset({"hnsw_m", "ef_construction", "ef_search", "nlist", "nprobe",
                            "seed"})


def build_index(vectors: np.ndarray | torch.Tensor, *, exact_below: int | None = 50_000,
                kind: str = "hnsw", metric: str = "ip", **opts: Any) -> ItemIndex:
    """``ExactIndex`` for catalogues under ``exact_below`` items, else ``FaissIndex``.

    Below a few tens of thousands of items an exact matmul is as fast as a graph walk and
    never misses; above, FAISS keeps latency flat. ``exact_below=None`` always builds the
    exact index (no FAISS needed). ``opts`` are FaissIndex options; they are checked even
    when the exact index is chosen, so a typo does not pass silently.
    """
    unknown = sorted(set(opts) - _FAISS_OPTIONS)
    if unknown:
        raise TypeError(f"unknown index option(s) {unknown}; known: {sorted(_FAISS_OPTIONS)}")
    n = len(vectors)
    if exact_below is None or n < exact_below:
        return ExactIndex(vectors, metric=metric)
    return FaissIndex(vectors, kind=kind, metric=metric, **opts)
