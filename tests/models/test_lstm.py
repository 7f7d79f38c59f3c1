"""LSTMRec keeps the recurrent model contract (prismrec.testing)."""

from prismrec.testing import RecurrentModelContract


class TestLSTM(RecurrentModelContract):
    model = "lstm"
