"""Data-parallel training: 2 gloo processes on CPU train exactly what 1 process trains."""

from __future__ import annotations

import json
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from prismrec.data import Sequences, leave_one_out
from prismrec.models import MODELS
from prismrec.train import Trainer
from prismrec.train.batching import TrainBatches
from prismrec.train.distributed import DistContext, bf16_supported, init_distributed, shutdown

N_ITEMS = 30
# no dropout anywhere: masks are random per process, everything else must match exactly
NO_DROPOUT = {"lstm": {"dim": 8, "dropout": 0.0, "hidden_dropout": 0.0},
              "sasrec": {"dim": 8, "dropout": 0.0, "attn_dropout": 0.0, "max_len": 6,
                         "blocks": 1}}


def histories() -> Sequences:
    """41 users of 3..24 events: after leave-one-out, 41 samples make batches of 8,8,8,8,8,1
    (the last gives rank 1 no rows), and lengths past tbptt=4 give uneven chunk counts."""
    rng = np.random.default_rng(7)
    lengths = rng.integers(3, 25, size=41)
    return Sequences.from_lists([rng.integers(0, N_ITEMS, size=n).tolist() for n in lengths])


def train_once(model_name: str, train_config: dict) -> tuple[dict, list]:
    split = leave_one_out(histories())
    torch.manual_seed(0)
    model = MODELS[model_name](N_ITEMS, NO_DROPOUT[model_name])
    config = {"epochs": 3, "batch_size": 8, "tbptt": 4, "progress": False, "threads": 1,
              "patience": 0, **train_config}
    result = Trainer(config).fit(model, split.train, split.valid)
    return model.state_dict(), result.history


def _rank_main(rank: int, world: int, port: int, model_name: str, train_config: dict,
               out: str) -> None:
    torch.set_num_threads(1)
    init_distributed(rank, world, init_method=f"tcp://127.0.0.1:{port}")
    try:
        state, history = train_once(model_name, train_config)
        if rank == 0:
            torch.save(state, out + ".pt")
            with open(out + ".json", "w") as f:
                json.dump(history, f)
    except BaseException:
        shutdown(wait_for_peers=False)
        raise
    shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.parametrize("model_name,train_config", [
    ("lstm", {"loss": "ce"}),
    ("sasrec", {"loss": "sampled", "n_negatives": 16}),
])
def test_two_gloo_processes_match_one_process_at_the_same_global_batch(
        tmp_path, model_name, train_config):
    out = str(tmp_path / "rank0")
    mp.start_processes(_rank_main, args=(2, free_port(), model_name, train_config, out),
                       nprocs=2, join=True, start_method="spawn")
    state, history = train_once(model_name, train_config)

    ddp_state = torch.load(out + ".pt", weights_only=True)
    with open(out + ".json") as f:
        ddp_history = json.load(f)
    assert set(ddp_state) == set(state)
    for name, value in state.items():
        if name.endswith("attn.qkv.bias"):
            # the key bias shifts every attention logit of a query equally, so its true
            # gradient is 0: it moves only by rounding noise, which Adam scales to lr-sized
            # steps; the query and value biases must match
            d = value.shape[0] // 3
            value, ddp_value = value[[*range(d), *range(2 * d, 3 * d)]], ddp_state[name][
                [*range(d), *range(2 * d, 3 * d)]]
        else:
            ddp_value = ddp_state[name]
        torch.testing.assert_close(ddp_value, value, rtol=1e-5, atol=1e-6, msg=name)
    assert len(ddp_history) == len(history) == 3
    for got, want in zip(ddp_history, history, strict=True):
        assert got["loss"] == pytest.approx(want["loss"], rel=1e-5)
        assert got["valid_ndcg@10"] == pytest.approx(want["valid_ndcg@10"], rel=1e-5)


def test_each_rank_takes_every_other_row_of_the_longest_first_batch():
    lengths = np.array([5, 9, 2, 7, 1])
    idx = np.arange(5)
    assert DistContext(0, 2).shard(idx, lengths).tolist() == [1, 0, 4]  # lengths 9, 5, 1
    assert DistContext(1, 2).shard(idx, lengths).tolist() == [3, 2]  # lengths 7, 2


def test_every_rank_gets_the_same_steps_and_whole_user_rows():
    seqs = Sequences.from_lists([list(range(n)) for n in (11, 3, 6, 2, 9)])
    batches = TrainBatches(seqs, batch_size=5, windowed=False, max_len=None)
    steps, rows = [], []
    for rank in (0, 1):
        epoch = list(DistContext(rank, 2).epoch(batches, np.random.default_rng(0), 4, True))
        steps.append([totals for _, totals in epoch])
        rows.append(sorted(b.lengths.tolist() for b, _ in epoch)[0])
    # inputs of 10, 2, 5, 1, 8 events in chunks of 4 steps: 15, then 9, then 2 positions
    assert steps[0] == steps[1] == [[15, 9, 2]]
    assert sorted(rows[0] + rows[1]) == [1, 2, 5, 8, 10]  # each history whole on one rank


@pytest.mark.skipif(not bf16_supported(), reason="this CPU has no native bf16")
def test_amp_runs_the_encoder_in_bf16_and_keeps_the_loss_close_to_float32():
    fp32_state, fp32 = train_once("sasrec", {"lr": 0.01})
    bf16_state, bf16 = train_once("sasrec", {"lr": 0.01, "amp": True})
    moved = max((fp32_state[k] - bf16_state[k]).abs().max().item() for k in fp32_state)
    assert moved > 1e-4  # bf16 rounding changed the training path
    for a, b in zip(fp32, bf16, strict=True):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3)
