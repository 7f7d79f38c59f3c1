"""GRURec keeps the recurrent model contract (prismrec.testing)."""

from prismrec.testing import RecurrentModelContract


class TestGRU(RecurrentModelContract):
    model = "gru"
