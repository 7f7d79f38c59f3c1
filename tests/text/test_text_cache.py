"""The disk cache re-encodes only new or changed texts, and refuses vectors of another width."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pytest

from prismrec.data import Catalog
from prismrec.text import (
    CachedEncoder,
    DimensionMismatchError,
    EncoderError,
    HashingEncoder,
    TextTemplate,
    encode_catalog,
)


@dataclass
class Counting:
    """A real encoder that records every text it was asked to encode."""

    inner: HashingEncoder = field(default_factory=lambda: HashingEncoder(dim=32))
    seen: list[str] = field(default_factory=list)
    label: str | None = None

    @property
    def name(self) -> str:
        return self.label or self.inner.name

    @property
    def dim(self) -> int:
        return self.inner.dim

    def encode(self, texts: list[str]) -> np.ndarray:
        self.seen.extend(texts)
        return self.inner.encode(texts)


def catalog(titles: dict[str, str]) -> Catalog:
    df = pd.DataFrame({"item": list(titles), "title": list(titles.values())})
    return Catalog.from_frame(df)


TITLES = {"a": "red running shoes", "b": "chef knife", "c": "blue yoga mat", "d": "tea pot"}


def test_first_call_encodes_all_second_call_nothing_and_same_vectors(tmp_path):
    enc = Counting()
    first = encode_catalog(catalog(TITLES), enc, cache_dir=tmp_path, progress=False)
    assert sorted(enc.seen) == sorted(TITLES.values())
    enc.seen.clear()
    again = encode_catalog(catalog(TITLES), enc, cache_dir=tmp_path, progress=False)
    assert enc.seen == []
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, HashingEncoder(dim=32).encode(list(TITLES.values())))


def test_changed_and_new_items_are_the_only_ones_encoded(tmp_path):
    enc = Counting()
    encode_catalog(catalog(TITLES), enc, cache_dir=tmp_path, progress=False)
    enc.seen.clear()
    changed = {**TITLES, "b": "santoku kitchen knife", "e": "garden hose"}
    out = encode_catalog(catalog(changed), enc, cache_dir=tmp_path, progress=False)
    assert sorted(enc.seen) == ["garden hose", "santoku kitchen knife"]
    np.testing.assert_array_equal(out, HashingEncoder(dim=32).encode(list(changed.values())))


def test_rows_follow_catalogue_order_and_duplicates_encode_once(tmp_path):
    enc = Counting()
    cached = CachedEncoder(enc, tmp_path, chunk_size=2)
    texts = ["b text", "a text", "b text", "c text", "a text"]
    out = cached.encode(texts)
    assert sorted(enc.seen) == ["a text", "b text", "c text"]
    np.testing.assert_array_equal(out, HashingEncoder(dim=32).encode(texts))
    assert (cached.last_hits, cached.last_encoded) == (0, 3)
    cached.encode(texts[:2])
    assert (cached.last_hits, cached.last_encoded) == (2, 0)


def test_cache_survives_a_new_process_view_of_the_folder(tmp_path):
    CachedEncoder(Counting(), tmp_path).encode(["x y", "z"])
    fresh = Counting()
    out = CachedEncoder(fresh, tmp_path).encode(["z", "x y"])
    assert fresh.seen == []
    np.testing.assert_array_equal(out, HashingEncoder(dim=32).encode(["z", "x y"]))


def test_template_and_model_name_are_part_of_the_key(tmp_path):
    cat = catalog(TITLES)
    enc = Counting()
    encode_catalog(cat, enc, TextTemplate(max_chars=500), cache_dir=tmp_path, progress=False)
    enc.seen.clear()
    encode_catalog(cat, enc, TextTemplate(max_chars=400), cache_dir=tmp_path, progress=False)
    assert len(enc.seen) == len(TITLES)  # another template: its own entries
    other = Counting(label="other-model")
    encode_catalog(cat, other, TextTemplate(max_chars=500), cache_dir=tmp_path, progress=False)
    assert len(other.seen) == len(TITLES)  # another model name: its own entries


def test_model_giving_another_width_under_the_same_name_is_refused(tmp_path):
    CachedEncoder(Counting(), tmp_path).encode(["one"])
    wider = Counting(inner=HashingEncoder(dim=64), label=HashingEncoder(dim=32).name)
    with pytest.raises(DimensionMismatchError, match="32-d.*64-d.*another name"):
        CachedEncoder(wider, tmp_path).encode(["two"])


def test_storage_is_npy_shards_and_sqlite_index_no_pickle(tmp_path):
    CachedEncoder(Counting(), tmp_path, chunk_size=2).encode(["a", "b", "c"])
    shards = sorted((tmp_path / "shards").glob("*.npy"))
    assert len(shards) == 2  # one per chunk
    for s in shards:
        arr = np.load(s, allow_pickle=False)
        assert arr.dtype == np.float32 and arr.shape[1] == 32
    assert not list((tmp_path / "shards").glob("*.tmp"))
    with sqlite3.connect(tmp_path / "index.sqlite") as con:
        assert con.execute("SELECT COUNT(*) FROM vectors").fetchone()[0] == 3
    con.close()


def test_a_lost_shard_is_re_encoded_not_an_error(tmp_path):
    CachedEncoder(Counting(), tmp_path).encode(["a", "b"])
    for s in (tmp_path / "shards").glob("*.npy"):
        s.unlink()
    enc = Counting()
    out = CachedEncoder(enc, tmp_path).encode(["a", "b"])
    assert sorted(enc.seen) == ["a", "b"]
    np.testing.assert_array_equal(out, HashingEncoder(dim=32).encode(["a", "b"]))


def test_cache_from_a_future_format_is_refused(tmp_path):
    tmp_path.mkdir(exist_ok=True)
    with sqlite3.connect(tmp_path / "index.sqlite") as con:
        con.execute("PRAGMA user_version = 99")
    con.close()
    with pytest.raises(EncoderError, match="format 99"):
        CachedEncoder(Counting(), tmp_path).encode(["a"])


def test_encoder_returning_wrong_row_count_is_reported(tmp_path):
    class Broken(Counting):
        def encode(self, texts):
            return np.zeros((len(texts) + 1, 32), dtype=np.float32)

    with pytest.raises(EncoderError, match="shape"):
        CachedEncoder(Broken(), tmp_path).encode(["a"])


def test_without_cache_dir_duplicates_still_encode_once():
    enc = Counting()
    cat = catalog({"a": "same", "b": "same", "c": "other"})
    out = encode_catalog(cat, enc, progress=False)
    assert sorted(enc.seen) == ["other", "same"]
    assert out.shape == (3, 32) and out.dtype == np.float32
    np.testing.assert_array_equal(out[0], out[1])


def test_empty_catalogue_text_fails_before_any_encoding(tmp_path):
    enc = Counting()
    with pytest.raises(ValueError, match="no text"):
        encode_catalog(catalog({"a": "ok", "b": ""}), enc, cache_dir=tmp_path, progress=False)
    assert enc.seen == []
