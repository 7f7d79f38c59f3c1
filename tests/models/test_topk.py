"""models.topk: the block top-k gives torch.topk's values, also with banned (-inf) items."""

import pytest
import torch

from prismrec.models.topk import topk


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
