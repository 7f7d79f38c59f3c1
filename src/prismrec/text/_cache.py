"""Text vectors remembered on disk, so a catalogue is encoded once and only changes re-encode.

Layout of a cache folder::

    index.sqlite        spaces(model, template, dim); vectors(space, text hash -> shard, row)
    shards/*.npy        float32 (rows, dim) arrays, one per encoded chunk; never pickled

A vector is found by (encoder name, template key, BLAKE2b hash of the text). Each shard is
written to a temporary file and renamed into place before its rows enter the index in one
SQLite transaction, so a crash leaves at worst an unused shard file, never a wrong vector.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import sqlite3
import time
import uuid
from pathlib import Path

import numpy as np

from prismrec.text._chunks import encode_in_chunks
from prismrec.text._protocol import DimensionMismatchError, EncoderError, TextEncoder

log = logging.getLogger("prismrec.text")

FORMAT = 1
_SQL_VARS = 500  # hashes per SELECT ... IN (...), below SQLite's parameter limit

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spaces (
    id INTEGER PRIMARY KEY, model TEXT NOT NULL, template TEXT NOT NULL, dim INTEGER,
    UNIQUE (model, template));
CREATE TABLE IF NOT EXISTS vectors (
    space INTEGER NOT NULL, hash TEXT NOT NULL, shard TEXT NOT NULL, row INTEGER NOT NULL,
    PRIMARY KEY (space, hash));
"""


def text_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()


class CachedEncoder:
    """A TextEncoder that asks ``encoder`` only for texts it has not seen before.

    ``namespace`` separates vectors made for different purposes with the same model
    (``encode_catalog`` passes the template key). Identical texts are encoded once.
    ``last_hits`` and ``last_encoded`` count what the latest ``encode`` call found and did.
    """

    def __init__(self, encoder: TextEncoder, cache_dir: str | os.PathLike, *,
                 namespace: str = "", chunk_size: int = 256, progress: bool = False) -> None:
        self.encoder = encoder
        self.cache_dir = Path(cache_dir)
        self.namespace = namespace
        self.chunk_size = chunk_size
        self.progress = progress
        self.last_hits = 0
        self.last_encoded = 0
        self._index = self.cache_dir / "index.sqlite"
        self._shards = self.cache_dir / "shards"

    @property
    def name(self) -> str:
        return self.encoder.name

    @property
    def dim(self) -> int:
        stored = self._space()[1]
        return stored if stored is not None else self.encoder.dim

    def encode(self, texts: list[str]) -> np.ndarray:
        start = time.perf_counter()
        hashes = [text_hash(t) for t in texts]
        unique: dict[str, int] = {}
        inverse = np.fromiter((unique.setdefault(h, len(unique)) for h in hashes),
                              dtype=np.int64, count=len(hashes))  # (N,) row in unique
        text_of = dict(zip(hashes, texts, strict=True))
        space, dim = self._space()
        keys = list(unique)
        vecs, found = self._load(space, keys, dim)  # (U, D) or None, bool (U,)
        missing = [k for k, ok in zip(keys, found, strict=True) if not ok]
        self.last_hits, self.last_encoded = len(keys) - len(missing), len(missing)
        if missing:
            log.info("text cache %s: %d of %d distinct texts cached, encoding %d",
                     self.cache_dir, len(keys) - len(missing), len(keys), len(missing))

            def save(pos: np.ndarray, chunk: np.ndarray) -> None:
                self._save(space, [missing[i] for i in pos], chunk)

            new = encode_in_chunks(self.encoder, [text_of[k] for k in missing],
                                   chunk_size=self.chunk_size, progress=self.progress,
                                   on_chunk=save)
            if vecs is None:
                vecs = np.empty((len(keys), new.shape[1]), dtype=np.float32)
            vecs[~found] = new
        if vecs is None:  # no texts at all
            return np.zeros((0, dim if dim is not None else self.encoder.dim), dtype=np.float32)
        if not missing:
            log.info("text cache %s: all %d texts cached (%.2f s)", self.cache_dir, len(texts),
                     time.perf_counter() - start)
        return vecs[inverse]

    # -- storage -------------------------------------------------------------------------

    def _connect(self) -> contextlib.closing[sqlite3.Connection]:
        self._shards.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self._index, timeout=60)
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, FORMAT):
            con.close()
            raise EncoderError(f"text cache {self.cache_dir} has format {version}, this prismrec "
                               f"reads format {FORMAT}; use another cache_dir or delete it")
        if version == 0:
            with con:
                con.executescript(_SCHEMA)
                con.execute(f"PRAGMA user_version = {FORMAT}")
        return contextlib.closing(con)

    def _space(self) -> tuple[int, int | None]:
        with self._connect() as con, con:
            con.execute("INSERT OR IGNORE INTO spaces (model, template) VALUES (?, ?)",
                        (self.encoder.name, self.namespace))
            sid, dim = con.execute("SELECT id, dim FROM spaces WHERE model = ? AND template = ?",
                                   (self.encoder.name, self.namespace)).fetchone()
        return int(sid), (None if dim is None else int(dim))

    def _load(self, space: int, keys: list[str], dim: int | None):
        found = np.zeros(len(keys), dtype=bool)
        if dim is None or not keys:
            return None, found
        where: dict[str, list[tuple[int, int]]] = {}  # shard -> [(position, row)]
        pos_of = {k: i for i, k in enumerate(keys)}
        with self._connect() as con:
            for lo in range(0, len(keys), _SQL_VARS):
                part = keys[lo: lo + _SQL_VARS]
                q = (f"SELECT hash, shard, row FROM vectors WHERE space = ? AND hash IN "
                     f"({','.join('?' * len(part))})")
                for h, shard, row in con.execute(q, (space, *part)):
                    where.setdefault(shard, []).append((pos_of[h], row))
        vecs = np.empty((len(keys), dim), dtype=np.float32)  # (U, D)
        for shard, entries in where.items():
            pos, rows = (np.array(x, dtype=np.int64) for x in zip(*entries, strict=True))
            try:
                arr = np.load(self._shards / shard, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                log.warning("text cache shard %s unreadable (%s); re-encoding its texts",
                            shard, exc)
                continue
            if arr.ndim != 2 or arr.shape[1] != dim or arr.dtype != np.float32 \
                    or rows.max() >= arr.shape[0]:
                log.warning("text cache shard %s has shape %s %s, expected (rows, %d) float32; "
                            "re-encoding its texts", shard, arr.shape, arr.dtype, dim)
                continue
            vecs[pos] = arr[rows]
            found[pos] = True
        return vecs, found

    def _save(self, space: int, keys: list[str], vecs: np.ndarray) -> None:
        with self._connect() as con:
            stored = con.execute("SELECT dim FROM spaces WHERE id = ?", (space,)).fetchone()[0]
        if stored is not None and stored != vecs.shape[1]:
            raise DimensionMismatchError(
                f"text cache {self.cache_dir} holds {stored}-d vectors for encoder "
                f"{self.encoder.name!r} but it now gives {vecs.shape[1]}-d ones: the model "
                f"changed under the same name; give it another name (label=...), another "
                f"cache_dir, or delete {self.cache_dir}"
            )
        shard = f"{space}-{uuid.uuid4().hex}.npy"
        tmp = self._shards / f".{shard}.tmp"
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(vecs, dtype=np.float32), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._shards / shard)
        with self._connect() as con, con:
            con.execute("UPDATE spaces SET dim = ? WHERE id = ? AND dim IS NULL",
                        (vecs.shape[1], space))
            con.executemany("INSERT OR REPLACE INTO vectors (space, hash, shard, row) "
                            "VALUES (?, ?, ?, ?)",
                            [(space, k, shard, i) for i, k in enumerate(keys)])
