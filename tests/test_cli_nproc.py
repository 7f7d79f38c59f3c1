"""``prismrec train --nproc 2``: the same command as two torchrun ranks, one checkpoint."""

from __future__ import annotations

import json

import pytest
import torch

from prismrec.cli import main
from prismrec.data.synthetic import generate
from prismrec.recommender import Recommender

NO_DROPOUT = '{"dim": 8, "dropout": 0.0, "hidden_dropout": 0.0}'


@pytest.mark.slow
def test_train_with_two_processes_saves_the_model_one_process_trains(tmp_path):
    data = generate(n_users=90, n_items=40, seed=5).save(tmp_path / "shop")
    common = ["train", "--dataset", "events", "--data-dir", str(data), "--model", "gru",
              "--model-config", NO_DROPOUT, "--epochs", "2", "--batch-size", "16", "--quiet"]
    assert main([*common, "--out", str(tmp_path / "one"), "--threads", "1"]) == 0
    code = main([*common, "--out", str(tmp_path / "two"), "--threads", "2", "--nproc", "2",
                 "--json", str(tmp_path / "two.json")])
    assert code == 0
    one, two = Recommender.load(tmp_path / "one"), Recommender.load(tmp_path / "two")
    for (name, a), b in zip(one.model_.state_dict().items(), two.model_.state_dict().values(),
                            strict=True):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6, msg=name)
    doc = json.loads((tmp_path / "two.json").read_text())
    assert doc["training"]["epochs"] == 2 and doc["config"]["train"]["threads"] == 1


def test_nproc_must_be_positive(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--dataset", "synthetic", "--out", str(tmp_path), "--nproc", "0"])
    assert exit_.value.code == 2
    assert "argument --nproc: expected a positive integer" in capsys.readouterr().err
