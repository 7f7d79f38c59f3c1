"""ExactIndex is the ground truth: it must equal a brute-force numpy ranking, ties included."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import prismrec.retrieve.index as index_module
from prismrec.errors import DataError
from prismrec.retrieve import ExactIndex, build_index


def brute_force(x, q, k, exclude=None, allowed=None):
    """Reference top-k: float64 scores, score desc then index asc, -1/-inf padding."""
    s = q.astype(np.float64) @ x.astype(np.float64).T  # (Q, N)
    idx = np.full((len(q), k), -1)
    sc = np.full((len(q), k), -np.inf)
    for r in range(len(q)):
        ok = np.ones(len(x), bool) if allowed is None else allowed.copy()
        if exclude is not None and exclude[r] is not None:
            ok[exclude[r]] = False
        ids = np.flatnonzero(ok)
        o = np.lexsort((ids, -s[r, ids]))[:k]
        idx[r, : len(o)], sc[r, : len(o)] = ids[o], s[r, ids[o]]
    return sc, idx


@pytest.fixture
def integer_vectors():
    """Small-integer vectors: float32 products are exact, and many scores tie."""
    rng = np.random.default_rng(0)
    x = rng.integers(-2, 3, size=(300, 6)).astype(np.float32)
    q = rng.integers(-2, 3, size=(25, 6)).astype(np.float32)
    return x, q


def test_exact_search_equals_brute_force_with_ties(integer_vectors):
    x, q = integer_vectors
    scores, idx = ExactIndex(x).search(q, 15)
    ref_s, ref_i = brute_force(x, q, 15)
    assert (ref_s[:, :-1] == ref_s[:, 1:]).any()  # the fixture really has ties
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_array_equal(scores, ref_s.astype(np.float32))
    assert scores.dtype == np.float32 and idx.dtype == np.int64


def test_exact_search_honours_exclusions_and_allowed_mask(integer_vectors):
    x, q = integer_vectors
    rng = np.random.default_rng(1)
    exclude = [rng.choice(300, size=int(rng.integers(0, 40)), replace=False) for _ in q]
    exclude[3] = None
    allowed = rng.random(300) < 0.7
    scores, idx = ExactIndex(x).search(q, 12, exclude=exclude, allowed_mask=allowed)
    ref_s, ref_i = brute_force(x, q, 12, exclude, allowed)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_array_equal(scores, ref_s.astype(np.float32))


def test_equal_scores_go_to_the_lower_index():
    x = np.ones((50, 4), dtype=np.float32)
    _, idx = ExactIndex(x).search(np.ones((1, 4), np.float32), 5,
                                  exclude=[np.array([0, 2])])
    assert idx.tolist() == [[1, 3, 4, 5, 6]]


def test_rows_with_fewer_eligible_items_than_k_are_padded():
    x = np.eye(4, dtype=np.float32)
    allowed = np.array([True, False, True, True])
    scores, idx = ExactIndex(x).search(np.array([[0, 0, 1, 0]], np.float32), 6,
                                       exclude=[np.array([3])], allowed_mask=allowed)
    assert idx.tolist() == [[2, 0, -1, -1, -1, -1]]
    assert scores[0, :2].tolist() == [1.0, 0.0] and np.isneginf(scores[0, 2:]).all()


def test_query_blocks_give_the_same_answer_as_one_block(integer_vectors, monkeypatch):
    x, q = integer_vectors
    whole = ExactIndex(x).search(q, 10)
    monkeypatch.setattr(index_module, "_BLOCK_ELEMS", 2 * len(x))  # two queries per block
    blocked = ExactIndex(x).search(q, 10)
    np.testing.assert_array_equal(whole[1], blocked[1])
    np.testing.assert_array_equal(whole[0], blocked[0])


def test_cosine_metric_scores_are_cosines():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(100, 8)).astype(np.float32) * rng.uniform(0.1, 10, size=(100, 1))
    q = rng.normal(size=(3, 8)).astype(np.float32)
    scores, idx = ExactIndex(x, metric="cosine").search(q, 5)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    ref = qn @ xn.T
    np.testing.assert_allclose(scores, np.take_along_axis(ref, idx, 1), atol=1e-5)
    np.testing.assert_array_equal(idx[:, 0], ref.argmax(1))


def test_added_item_is_findable_and_earlier_items_keep_their_answers(integer_vectors):
    x, q = integer_vectors
    index = ExactIndex(x)
    before = index.search(q, 10)
    new = np.vstack([q[0] * 100, np.zeros((40, 6))]).astype(np.float32)
    got = index.add(new[:1])
    got2 = index.add(new[1:])  # a second add goes past the grown buffer again
    assert got.tolist() == [300] and got2.tolist() == list(range(301, 341))
    assert len(index) == 341
    _, idx = index.search(q[:1], 1)
    assert idx[0, 0] == 300
    rebuilt = ExactIndex(np.vstack([x, new]))
    np.testing.assert_array_equal(index.search(q, 10)[1], rebuilt.search(q, 10)[1])
    old_only = np.r_[np.ones(300, bool), np.zeros(41, bool)]
    np.testing.assert_array_equal(index.search(q, 10, allowed_mask=old_only)[1], before[1])


def test_index_does_not_alias_the_callers_array(integer_vectors):
    x, q = integer_vectors
    x = x.copy()
    index = ExactIndex(x)
    before = index.search(q, 5)
    x[:] = 0
    np.testing.assert_array_equal(index.search(q, 5)[1], before[1])


def test_score_is_the_exact_inner_product(integer_vectors):
    x, q = integer_vectors
    items = np.array([5, 0, 299])
    np.testing.assert_array_equal(ExactIndex(x).score(q, items), q @ x[items].T)


def test_torch_tensors_are_accepted(integer_vectors):
    x, q = integer_vectors
    a = ExactIndex(torch.from_numpy(x)).search(torch.from_numpy(q), 5)
    np.testing.assert_array_equal(a[1], ExactIndex(x).search(q, 5)[1])


@pytest.mark.parametrize("call, error, words", [
    (lambda ix: ix.search(np.zeros((1, 5), np.float32), 3), DataError, "5-d"),
    (lambda ix: ix.search(np.full((1, 6), np.nan, np.float32), 3), DataError, "NaN"),
    (lambda ix: ix.search(np.zeros((1, 6), np.float32), 0), ValueError, "k must"),
    (lambda ix: ix.search(np.zeros((1, 6), np.float32), 3, exclude=[np.array([300])]),
     ValueError, "[0, 300)"),
    (lambda ix: ix.search(np.zeros((2, 6), np.float32), 3, exclude=[None]), ValueError,
     "one array"),
    (lambda ix: ix.search(np.zeros((1, 6), np.float32), 3, allowed_mask=np.ones(5, bool)),
     ValueError, "shape (300,)"),
    (lambda ix: ix.add(np.zeros((1, 7), np.float32)), DataError, "7-d"),
])
def test_bad_input_is_refused_with_a_message(integer_vectors, call, error, words):
    with pytest.raises(error) as info:
        call(ExactIndex(integer_vectors[0]))
    assert words in str(info.value)


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="metric"):
        ExactIndex(np.zeros((2, 2), np.float32), metric="l2")


def test_build_index_stays_exact_below_the_threshold():
    x = np.random.default_rng(0).normal(size=(99, 4)).astype(np.float32)
    assert isinstance(build_index(x, exact_below=100), ExactIndex)
    assert isinstance(build_index(x, exact_below=None), ExactIndex)


def test_build_index_switches_to_faiss_at_the_threshold():
    pytest.importorskip("faiss")
    from prismrec.retrieve import FaissIndex

    x = np.random.default_rng(0).normal(size=(100, 4)).astype(np.float32)
    index = build_index(x, exact_below=100, kind="ivf", nlist=2)
    assert isinstance(index, FaissIndex) and index.kind == "ivf" and len(index) == 100


def test_build_index_refuses_unknown_options_even_when_exact():
    with pytest.raises(TypeError, match="ef_serch"):
        build_index(np.zeros((3, 2), np.float32), ef_serch=10)


def test_missing_faiss_gives_an_install_hint():
    code = ("import sys; sys.modules['faiss'] = None\n"
            "import numpy as np\n"
            "from prismrec.errors import MissingExtraError\n"
            "from prismrec.retrieve import FaissIndex\n"
            "try:\n    FaissIndex(np.zeros((3, 2), np.float32))\n"
            "except MissingExtraError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert "pip install 'prismrec[ann]'" in out.stdout
