"""SASRec keeps the sequence model contract (prismrec.testing) and reads a bounded window."""

import pytest
import torch

from prismrec.models import SASRec
from prismrec.testing import SequenceModelContract


class TestSASRec(SequenceModelContract):
    model = "sasrec"


def test_sasrec_refuses_more_than_max_len_positions():
    m = SASRec(5, dim=8, max_len=4)
    with pytest.raises(ValueError, match="max_len=4"):
        m(torch.zeros(1, 5, dtype=torch.long), torch.tensor([5]))


def test_sasrec_heads_must_divide_dim():
    with pytest.raises(ValueError, match="divisible"):
        SASRec(5, dim=10, heads=3)
