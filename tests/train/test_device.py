"""--device: explicit cpu trains and scores exactly as the default does; cuda where torch sees
no GPU is a clear DeviceError (a ValueError) raised before any work is done."""

import numpy as np
import pytest
import torch

from prismrec.data import leave_one_out
from prismrec.errors import DeviceError
from prismrec.models import MODELS
from prismrec.recommender import Recommender
from prismrec.testing import CYCLE_ITEMS, cycle_sequences
from prismrec.train import (
    TrainConfig,
    Trainer,
    load_checkpoint,
    rank_metrics,
    resolve_device,
    save_checkpoint,
    score_sequences,
)
from prismrec.train.batching import TrainBatches

FAST = {"progress": False, "threads": 1, "epochs": 2, "batch_size": 32}
no_gpu = pytest.mark.skipif(torch.cuda.is_available(),
                            reason="a CUDA GPU is present: 'cuda' is valid here")


def small(name="sasrec"):
    torch.manual_seed(0)
    return MODELS[name](CYCLE_ITEMS, {"dim": 16})


def test_resolve_device_names():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == resolve_device("auto")
    with pytest.raises(DeviceError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    with pytest.raises(DeviceError, match="'mps' is not supported"):
        resolve_device("mps")


@no_gpu
def test_cuda_without_a_gpu_is_a_value_error_that_says_what_to_use():
    with pytest.raises(ValueError, match=r"'cuda' was asked for, but this torch .* sees no "
                                         r"CUDA GPU: use --device cpu or auto") as info:
        resolve_device("cuda")
    assert isinstance(info.value, DeviceError)
    with pytest.raises(DeviceError):
        Trainer(TrainConfig(**FAST), device="cuda")


@pytest.mark.parametrize("name", ["sasrec", "gru"])
def test_explicit_cpu_trains_and_validates_exactly_like_the_default(name):
    split = leave_one_out(cycle_sequences(60, seed=1))
    runs = []
    for device in (None, "cpu"):
        model = small(name)
        res = Trainer(TrainConfig(**FAST), device=device).fit(model, split.train, split.valid)
        runs.append((model, res))
    (m0, r0), (m1, r1) = runs
    assert [h["loss"] for h in r0.history] == [h["loss"] for h in r1.history]
    assert r0.best_metrics == r1.best_metrics
    assert next(m1.parameters()).device.type == "cpu"
    for a, b in zip(m0.state_dict().values(), m1.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert rank_metrics(m1, split.test, device="cpu") == rank_metrics(m0, split.test)
    assert torch.equal(score_sequences(m1, split.test.history, device=torch.device("cpu")),
                       score_sequences(m0, split.test.history))


def test_batches_move_to_a_device_whole():
    b = TrainBatches(cycle_sequences(5), batch_size=8, windowed=True, max_len=10,
                     with_gaps=True)
    batch = b.batch(np.arange(len(b.starts)))
    assert batch.to(torch.device("cpu")) is batch  # already there: no copy
    moved = batch.to(torch.device("meta"))  # a real second device, no data
    assert {t.device.type for t in (moved.inputs, moved.targets, moved.gaps,
                                    moved.lengths)} == {"meta"}


def test_checkpoints_load_onto_a_named_device(tmp_path):
    model = small()
    save_checkpoint(tmp_path / "ck", model)
    ck = load_checkpoint(tmp_path / "ck", device="cpu")
    assert {p.device.type for p in ck.model.parameters()} == {"cpu"}
    for a, b in zip(model.state_dict().values(), ck.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)


@no_gpu
def test_checkpoint_onto_cuda_without_a_gpu_is_refused(tmp_path):
    save_checkpoint(tmp_path / "ck", small())
    with pytest.raises(DeviceError, match="sees no CUDA GPU"):
        load_checkpoint(tmp_path / "ck", device="cuda")


def _events():
    seqs = cycle_sequences(40, seed=2)
    import pandas as pd

    rows = [(f"u{u}", f"i{it}", float(t)) for u in range(len(seqs))
            for it, t in zip(seqs.row(u), seqs.row_times(u), strict=True)]
    return pd.DataFrame(rows, columns=["user", "item", "timestamp"])


def test_recommender_on_explicit_cpu_matches_the_default_and_reloads(tmp_path):
    events = _events()
    params = {"model_config": {"dim": 16}, "train_config": FAST}
    default = Recommender("sasrec", **params).fit(events)
    cpu = Recommender("sasrec", device="cpu", **params).fit(events)
    assert cpu.get_params()["device"] == "cpu" and cpu.device_ == torch.device("cpu")
    a, b = default.recommend(["u1", "u2"], k=5), cpu.recommend(["u1", "u2"], k=5)
    assert a.equals(b)
    cpu.save(tmp_path / "rec")
    again = Recommender.load(tmp_path / "rec", device="cpu")
    assert again.recommend(["u1", "u2"], k=5).equals(b)


@no_gpu
def test_recommender_on_cuda_without_a_gpu_refuses_before_training_or_loading(tmp_path):
    events = _events()
    rec = Recommender("sasrec", model_config={"dim": 16}, train_config=FAST, device="cuda")
    with pytest.raises(DeviceError, match="sees no CUDA GPU"):
        rec.fit(events)
    assert not hasattr(rec, "model_")
    Recommender("sasrec", model_config={"dim": 16}, train_config=FAST).fit(events).save(
        tmp_path / "rec")
    with pytest.raises(DeviceError, match="sees no CUDA GPU"):
        Recommender.load(tmp_path / "rec", device="cuda")
