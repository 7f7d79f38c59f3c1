"""The time-gap feature: models can use "how long since the previous event"."""

import numpy as np
import pytest
import torch

from prismrec.data import Sequences, leave_one_out
from prismrec.models import MODELS
from prismrec.testing import CYCLE_ITEMS, cycle_sequences, top1_accuracy
from prismrec.train import TrainConfig, Trainer, event_gaps

TRAIN = {"epochs": 40, "lr": 5e-3, "weight_decay": 0.0, "patience": 5, "progress": False,
         "threads": 1, "valid_filter_seen": False, "batch_size": 64}


def gap_sequences(n_users=240, seed=0):
    """Blocks (3, 0, x): x is 1 when item 0 came a minute after 3, and 2 when a week after.

    The item sequence alone cannot tell 1 from 2; the gap before item 0 can.
    """
    rng = np.random.default_rng(seed)
    rows, times = [], []
    for _ in range(n_users):
        items, t, ts = [], 1.6e9, []
        for _ in range(rng.integers(3, 7)):
            quick = rng.random() < 0.5
            for item, gap in ((3, 3600.0), (0, 60.0 if quick else 7 * 86400.0),
                              (1 if quick else 2, 3600.0)):
                t += gap
                items.append(item)
                ts.append(t)
        rows.append(items)
        times.append(ts)
    return Sequences.from_lists(rows, times)


@pytest.mark.parametrize("name", ["lstm", "gru", "sasrec"])
def test_time_gaps_let_a_model_predict_what_the_items_alone_cannot(name):
    split = leave_one_out(gap_sequences())
    acc = {}
    for gaps in (False, True):
        torch.manual_seed(0)
        m = MODELS[name](4, {"dim": 16, "dropout": 0.0, "time_gaps": gaps})
        Trainer(TrainConfig(**TRAIN)).fit(m, split.train)  # the valid target (0) is too easy
        acc[gaps] = top1_accuracy(m, split.test)
    assert acc[True] >= 0.95
    assert acc[False] <= 0.75


def test_time_gaps_work_on_data_without_a_clock():
    rows = cycle_sequences().to_lists()  # no times: they default to positions, every gap is 1
    split = leave_one_out(Sequences.from_lists(rows))
    assert (event_gaps(split.train)[split.train.positions() > 0] == 1).all()
    torch.manual_seed(0)
    m = MODELS["gru"](CYCLE_ITEMS, {"dim": 32, "dropout": 0.1, "time_gaps": True})
    Trainer(TrainConfig(**TRAIN)).fit(m, split.train, split.valid)
    assert top1_accuracy(m, split.test) >= 0.9
