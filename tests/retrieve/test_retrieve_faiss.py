"""FaissIndex: high recall against the exact index, exact scores, filters, persistence."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from prismrec.errors import CheckpointError
from prismrec.retrieve import ExactIndex, FaissIndex

faiss = pytest.importorskip("faiss")


@pytest.fixture(scope="module")
def clustered():
    """3,000 unit vectors in 40 overlapping clusters (32-d), 100 queries near the centres."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(40, 32))
    x = centres[rng.integers(0, 40, 3000)] + 1.0 * rng.normal(size=(3000, 32))
    q = centres[rng.integers(0, 40, 100)] + 1.0 * rng.normal(size=(100, 32))
    unit = lambda a: (a / np.linalg.norm(a, axis=1, keepdims=True)).astype(np.float32)  # noqa: E731
    return unit(x), unit(q)


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(np.intersect1d(f[f >= 0], t)) / len(t)
                          for f, t in zip(found, truth, strict=True)]))


@pytest.mark.parametrize("kind, opts", [("hnsw", {}), ("ivf", {"nprobe": 8})])
def test_recall_at_10_against_exact_is_at_least_095(clustered, kind, opts):
    x, q = clustered
    _, truth = ExactIndex(x).search(q, 10)
    _, found = FaissIndex(x, kind=kind, **opts).search(q, 10)
    assert recall(found, truth) >= 0.95


def test_the_recall_fixture_separates_good_from_starved_indexes(clustered):
    x, q = clustered
    _, truth = ExactIndex(x).search(q, 10)
    _, found = FaissIndex(x, kind="ivf", nprobe=1).search(q, 10)
    assert recall(found, truth) < 0.9  # so the 0.95 bar above is not met by any index


def test_returned_scores_are_exact_and_ordered(clustered):
    x, q = clustered
    scores, idx = FaissIndex(x).search(q, 10)
    np.testing.assert_allclose(scores, np.take_along_axis(q @ x.T, idx, 1), atol=1e-5)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_excluded_items_never_appear_and_rows_stay_full(clustered):
    x, q = clustered
    _, top = ExactIndex(x).search(q, 30)
    exclude = [t[:25] for t in top]  # the 25 best items of each query are "seen"
    _, idx = FaissIndex(x).search(q, 10, exclude=exclude)
    assert (idx >= 0).all()
    assert not any(np.isin(i, e).any() for i, e in zip(idx, exclude, strict=True))
    assert recall(idx, [t[25:] for t in top]) >= 0.5  # next-best items, not arbitrary ones


def test_strict_mask_falls_back_to_exact_answers(clustered):
    x, q = clustered
    allowed = np.zeros(len(x), bool)
    allowed[[7, 1500, 2999]] = True
    for kind in ("hnsw", "ivf"):
        scores, idx = FaissIndex(x, kind=kind).search(q[:5], 10, allowed_mask=allowed)
        ref_s, ref_i = ExactIndex(x).search(q[:5], 10, allowed_mask=allowed)
        np.testing.assert_array_equal(idx, ref_i)
        assert (idx[:, 3:] == -1).all() and np.isneginf(scores[:, 3:]).all()


def test_mask_is_honoured(clustered):
    x, q = clustered
    allowed = np.random.default_rng(3).random(len(x)) < 0.2
    _, idx = FaissIndex(x).search(q, 10, allowed_mask=allowed)
    assert (idx >= 0).all() and allowed[idx].all()


def test_added_item_is_findable(clustered):
    x, q = clustered
    index = FaissIndex(x, kind="hnsw")
    ivf = FaissIndex(x, kind="ivf")
    for ix in (index, ivf):
        new = ix.add(q[:2])
        assert new.tolist() == [3000, 3001] and len(ix) == 3002
        scores, idx = ix.search(q[:2], 1)
        assert idx[:, 0].tolist() == [3000, 3001]
        np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_save_and_load_give_identical_results(clustered, tmp_path, kind):
    x, q = clustered
    index = FaissIndex(x, kind=kind, metric="cosine")
    before = index.search(q, 10, exclude=[np.array([1, 2, 3])] * len(q))
    index.save(tmp_path / "ckpt")
    meta = json.loads((tmp_path / "ckpt" / "item_index.json").read_text())
    assert meta["kind"] == kind and meta["n_items"] == 3000 and meta["build_seconds"] > 0
    loaded = FaissIndex.load(tmp_path / "ckpt")
    after = loaded.search(q, 10, exclude=[np.array([1, 2, 3])] * len(q))
    np.testing.assert_array_equal(before[1], after[1])
    np.testing.assert_array_equal(before[0], after[0])
    assert (loaded.kind, loaded.metric, loaded.params) == (kind, "cosine", index.params)
    assert loaded.add(q[:1]).tolist() == [3000]


def test_loading_a_missing_or_inconsistent_index_raises(clustered, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        FaissIndex.load(tmp_path)
    x, _ = clustered
    FaissIndex(x[:200]).save(tmp_path)
    meta = json.loads((tmp_path / "item_index.json").read_text())
    (tmp_path / "item_index.json").write_text(json.dumps({**meta, "n_items": 5}))
    with pytest.raises(CheckpointError, match="200 x 32"):
        FaissIndex.load(tmp_path)
    (tmp_path / "item_index.faiss").write_bytes(b"not an index")
    (tmp_path / "item_index.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="not a readable"):
        FaissIndex.load(tmp_path)


def test_faiss_threads_follow_torch(clustered):
    x, q = clustered
    index = FaissIndex(x[:500])
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        index.search(q[:2], 3)
        assert faiss.omp_get_max_threads() == 1
    finally:
        torch.set_num_threads(old)
    index.search(q[:2], 3)
    assert faiss.omp_get_max_threads() == old


def test_search_width_can_be_tuned_after_building(clustered):
    x, q = clustered
    _, truth = ExactIndex(x).search(q, 10)
    ivf = FaissIndex(x, kind="ivf", nprobe=1)
    starved = recall(ivf.search(q, 10)[1], truth)
    ivf.nprobe = ivf.params["nlist"]  # every cluster scanned: exact
    assert ivf.nprobe == ivf.params["nlist"]
    assert recall(ivf.search(q, 10)[1], truth) == 1.0 > starved
    hnsw = FaissIndex(x, hnsw_m=4, ef_construction=8, ef_search=1)
    low = recall(hnsw.search(q, 10)[1], truth)
    hnsw.ef_search = 400
    assert recall(hnsw.search(q, 10)[1], truth) > low
    with pytest.raises(AttributeError, match="ivf"):
        hnsw.nprobe = 3
    with pytest.raises(ValueError, match="clusters"):
        ivf.nprobe = 10_000


def test_bad_options_are_refused(clustered):
    x, _ = clustered
    with pytest.raises(ValueError, match="kind"):
        FaissIndex(x, kind="lsh")
    with pytest.raises(ValueError, match="nlist"):
        FaissIndex(x[:10], kind="ivf", nlist=11)
    with pytest.raises(ValueError, match="ef_search"):
        FaissIndex(x, ef_search=0)


def test_compose_over_faiss_matches_compose_over_exact(clustered):
    from prismrec.retrieve import compose

    x, q = clustered
    v, w = q[:3], [0.5, 0.3, 0.2]
    seen = np.arange(0, 3000, 7)
    for d in (0.0, 1.0):
        approx = compose(v, w, FaissIndex(x, ef_search=400), 10, diversity=d,
                         exclude_items=seen)
        exact = compose(v, w, ExactIndex(x), 10, diversity=d, exclude_items=seen)
        np.testing.assert_array_equal(approx.items, exact.items)
        np.testing.assert_array_equal(approx.interest, exact.interest)
        np.testing.assert_allclose(approx.scores, exact.scores, atol=1e-5)
