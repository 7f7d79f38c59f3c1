"""models.topk: the block top-k gives torch.topk's values, also with banned (-inf) items; ScoreTable
scores and ranks like the plain product."""

import pytest
import torch

from prismrec.models.topk import ScoreTable
from prismrec.ranking import topk


@pytest.mark.parametrize("n,k", [(100_003, 10), (50_000, 60), (1_000, 10), (129, 1), (64, 0)])
def test_block_topk_equals_torch_topk(n, k):
    g = torch.Generator().manual_seed(n)
    scores = torch.randn(5, n, generator=g)
    scores[1, ::3] = -torch.inf  # a banned third of the catalogue
    values, indices = topk(scores, k)
    want = torch.topk(scores, k, dim=1, sorted=True)
    torch.testing.assert_close(values, want.values)
    torch.testing.assert_close(scores.gather(1, indices), want.values)  # indices hold them


def test_ties_keep_the_values_and_indices_stay_distinct():
    scores = torch.zeros(2, 40_000)
    scores[:, 7::1000] = 1.0
    values, indices = topk(scores, 50)
    assert values[:, :40].eq(1).all() and values[:, 40:].eq(0).all()
    assert all(len(set(row.tolist())) == 50 for row in indices)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"\(B, N\)"):
        topk(torch.zeros(5), 1)
    with pytest.raises(ValueError, match="k must be"):
        topk(torch.zeros(2, 5), 6)


@pytest.mark.parametrize("with_bias", [True, False])
def test_score_table_scores_and_top_items_equal_the_plain_product(with_bias):
    g = torch.Generator().manual_seed(1)
    table, users = torch.randn(1000, 8, generator=g), torch.randn(3, 8, generator=g)
    bias = torch.randn(1000, generator=g) if with_bias else None
    plain = users @ table.T + (0 if bias is None else bias)
    scorer = ScoreTable(table, bias, block=128)  # 1000 items: padded to 1024 columns
    scores = scorer.scores(users)
    assert scores.shape == (3, 1024) and torch.isinf(scores[:, 1000:]).all()
    torch.testing.assert_close(scores[:, :1000], plain)
    values, indices = scorer.topk(scores, 10)
    expected = torch.topk(plain, 10)
    torch.testing.assert_close(values, expected.values)
    assert torch.equal(indices, expected.indices)


def test_score_table_reuses_its_buffer_and_grows_it_for_larger_batches():
    scorer = ScoreTable(torch.randn(300, 4), block=128)
    first = scorer.scores(torch.randn(2, 4))
    again = scorer.scores(torch.randn(2, 4))
    assert first.data_ptr() == again.data_ptr()
    big = scorer.scores(torch.randn(40, 4))
    assert big.shape == (40, 384)
