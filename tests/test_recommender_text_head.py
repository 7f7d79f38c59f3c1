"""The text head (``text_head`` > 0): a second, text-only softmax in training, so the text
path ranks on its own, and items without events are placed by it (``_cold``)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from prismrec.data.sequences import Sequences
from prismrec.models import build_model
from prismrec.recommender import Recommender
from prismrec.recommender._cold import ColdPlacement
from prismrec.testing import CYCLES, cycle_catalog, cycle_frame
from prismrec.text import HashingEncoder
from prismrec.train.inference import encode_sequences
from prismrec.train.losses import full_ce

torch.set_num_threads(1)

TRAIN = {"epochs": 40, "lr": 5e-3, "weight_decay": 0.0, "progress": False, "threads": 1,
         "valid_filter_seen": False, "batch_size": 64, "seed": 0}
ENCODER = HashingEncoder(64)
NEW = pd.DataFrame({"item": ["i7-twin", "stranger"], "title": ["black bicycle", "plain spoon"]})


def fit(text_head: float) -> Recommender:
    cfg = {"dim": 32, "dropout": 0.1, "embedding": "id+text", "text_head": text_head}
    return Recommender("gru", model_config=cfg, train_config=TRAIN).fit(
        cycle_frame(), cycle_catalog(), text=True, encoder=ENCODER)


@pytest.fixture(scope="module")
def headed() -> Recommender:
    return fit(1.0)


def text_only_top1(rec: Recommender) -> float:
    """Share of cycle positions whose next item is first by the text head alone (text
    projection and text-predicted bias): no ID rows."""
    m = rec.model_
    hist, nxt = [], []
    for cycle in CYCLES:
        for j in range(len(cycle)):  # two laps, ending just before position j
            walk = [cycle[(j + i) % len(cycle)] for i in range(2 * len(cycle))]
            hist.append(walk)
            nxt.append(cycle[j])
    seqs = Sequences.from_lists(hist, [np.arange(len(h), dtype=float) for h in hist])
    with torch.no_grad():
        h = encode_sequences(m, seqs)  # (B, D)
        text, bias = m.text_output()  # (N, D), (N,)
        top = (h @ text.T + bias).argmax(1).numpy()
    return float((top == np.asarray(nxt)).mean())


def test_text_head_needs_an_id_and_a_text_path():
    with pytest.raises(ValueError, match="text_head=1.0 needs embedding='id\\+text'"):
        build_model("gru", 10, {"embedding": "id", "text_head": 1.0})
    with pytest.raises(ValueError, match="text_head must be >= 0"):
        build_model("gru", 10, {"embedding": "id+text", "text_dim": 8, "text_head": -1.0})


def test_the_text_loss_is_the_softmax_over_the_text_output():
    m = build_model("gru", 6, {"dim": 8, "embedding": "id+text", "text_head": 0.5},
                    text_vectors=torch.randn(6, 5))
    with torch.no_grad():
        m.text_bias.weight.normal_()  # not the zero start: the bias must count
    hidden, targets = torch.randn(4, 8), torch.tensor([0, 3, 5, 3])
    table, bias = m.text_output()
    want = F.cross_entropy(hidden @ table.T + bias, targets)
    torch.testing.assert_close(full_ce(m, hidden, targets, output=(table, bias)), want)
    with torch.no_grad():  # the unfused path gives the same
        torch.testing.assert_close(full_ce(m, hidden, targets, output=m.text_output()), want)


def test_training_fits_the_text_head_and_it_ranks_on_its_own(headed):
    # the head's bias starts at zero and only the text loss moves it
    assert float(headed.model_.text_bias.weight.detach().abs().sum()) > 0.0
    assert text_only_top1(headed) >= 0.9


def test_an_added_item_takes_the_text_heads_bias_onto_the_main_scale(headed):
    r = copy.deepcopy(headed)
    p = r.cold_placement_
    with torch.no_grad():  # every item trained: the mean over all of them
        assert p.text_bias_mean == pytest.approx(float(r.model_.text_output()[1].mean()),
                                                 abs=1e-5)
    r.cold_placement_ = ColdPlacement(1.5, 0.75, p.mean_bias, "validation",
                                      text_bias_mean=p.text_bias_mean)
    n = len(r.items_)
    r.add_items(NEW)
    m = r.model_
    with torch.no_grad():
        vectors = torch.from_numpy(ENCODER.encode(["black bicycle", "plain spoon"]))
        text_bias = m.text_bias(vectors).squeeze(-1)
        torch.testing.assert_close(m.output_table()[n:], 1.5 * m.items.proj(vectors))
        torch.testing.assert_close(
            m.out_bias[n:], p.mean_bias + 0.75 + 1.5 * (text_bias - p.text_bias_mean))


def test_the_text_head_survives_save_and_load(headed, tmp_path):
    back = Recommender.load(headed.save(tmp_path / "ck"))
    assert back.model_.config.text_head == 1.0
    assert back.cold_placement_ == headed.cold_placement_
    pd.testing.assert_frame_equal(back.recommend("u1"), headed.recommend("u1"))
    a, b = copy.deepcopy(headed), back
    a.add_items(NEW)
    b.add_items(NEW)
    torch.testing.assert_close(b.model_.out_bias, a.model_.out_bias)


def test_a_placement_saved_before_the_text_head_reads_as_none():
    d = ColdPlacement(1.25, 0.5, 0.1, "validation").to_dict()
    d.pop("text_bias_mean")
    assert ColdPlacement.from_dict(d).text_bias_mean is None
