"""The model-free hashing encoder and the exact cosine top-k helper."""

from __future__ import annotations

import numpy as np
import pytest

from prismrec.text import DimensionMismatchError, HashingEncoder, cosine_topk


def test_hashing_encoder_keeps_the_protocol():
    enc = HashingEncoder(dim=64)
    out = enc.encode(["a b", "c", ""])
    assert out.shape == (3, 64) and out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out[:2], axis=1), 1.0, rtol=1e-6)
    assert not out[2].any()  # no words, zero vector


def test_hashing_encoder_is_deterministic_and_case_insensitive():
    a = HashingEncoder().encode(["Red Running Shoes"])
    b = HashingEncoder().encode(["red running shoes"])
    np.testing.assert_array_equal(a, b)


def test_shared_words_make_texts_closer():
    v = HashingEncoder(dim=512).encode(["red running shoes", "blue running shoes",
                                        "cast iron kitchen pan"])
    assert v[0] @ v[1] > 0.4 > v[0] @ v[2]


def test_name_says_what_changes_the_vectors():
    assert HashingEncoder(dim=64).name != HashingEncoder(dim=128).name
    assert HashingEncoder(bigrams=False).name != HashingEncoder().name


def test_topk_finds_nearest_by_cosine_best_first():
    items = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], dtype=np.float32)
    idx, scores = cosine_topk(np.array([[2.0, 0.1]]), items, k=3)
    assert idx.tolist() == [[0, 2, 1]]
    assert scores.dtype == np.float32
    np.testing.assert_allclose(scores[0, 1], (2.0 + 0.1) / np.hypot(2, 0.1) / np.sqrt(2),
                               rtol=1e-6)


def test_topk_ties_go_to_the_lower_index_across_blocks():
    items = np.ones((5, 3), dtype=np.float32)
    idx, _ = cosine_topk(np.ones((3, 3)), items, k=2, block=2)
    assert idx.tolist() == [[0, 1]] * 3


def test_topk_with_k_beyond_catalogue_returns_every_item():
    idx, scores = cosine_topk(np.eye(2), np.eye(2), k=10)
    assert idx.shape == (2, 2) and scores.shape == (2, 2)


def test_zero_vectors_score_zero():
    _, scores = cosine_topk(np.zeros((1, 2)), np.eye(2), k=2)
    assert scores.tolist() == [[0.0, 0.0]]


def test_topk_rejects_bad_input():
    with pytest.raises(DimensionMismatchError, match="3-d.*2-d"):
        cosine_topk(np.ones((1, 3)), np.ones((4, 2)), k=1)
    with pytest.raises(ValueError, match="k must be"):
        cosine_topk(np.ones((1, 2)), np.ones((4, 2)), k=0)
    with pytest.raises(ValueError, match="2-d"):
        cosine_topk(np.ones(2), np.ones((4, 2)), k=1)
