"""--device on train, evaluate and recommend (serve has none): explicit cpu works end to end; cuda
where torch sees no GPU stops with exit code 2 and a message, before any work is done."""

from __future__ import annotations

import json

import pytest
import torch

from prismrec.cli import main
from prismrec.data.synthetic import generate

no_gpu = pytest.mark.skipif(torch.cuda.is_available(),
                            reason="a CUDA GPU is present: --device cuda is valid here")


@pytest.fixture(scope="module")
def events_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shop")
    generate(n_users=120, n_items=60, seed=4).save(folder)
    return folder


@pytest.fixture(scope="module")
def cpu_checkpoint(events_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("ck")
    out, doc = folder / "sasrec", folder / "train.json"
    assert main(["train", "--dataset", "events", "--data-dir", str(events_dir), "--model",
                 "sasrec", "--out", str(out), "--epochs", "2", "--quiet", "--threads", "1",
                 "--device", "cpu", "--json", str(doc)]) == 0
    return out, json.loads(doc.read_text())


def test_train_on_explicit_cpu_records_the_device(cpu_checkpoint, capsys):
    _, doc = cpu_checkpoint
    assert doc["device"] == "cpu"
    assert 0.0 <= doc["metrics"]["ndcg@10"] <= 1.0


def test_evaluate_and_recommend_on_explicit_cpu(cpu_checkpoint, tmp_path, capsys):
    out, trained = cpu_checkpoint
    doc = tmp_path / "eval.json"
    assert main(["evaluate", "--checkpoint", str(out), "--device", "cpu", "--json",
                 str(doc)]) == 0
    assert json.loads(doc.read_text())["metrics"]["ndcg@10"] == pytest.approx(
        trained["metrics"]["ndcg@10"])
    capsys.readouterr()
    assert main(["recommend", "--checkpoint", str(out), "--user", "u0003", "-k", "3",
                 "--no-explain", "--json", "--device", "cpu"]) == 0
    rows = json.loads(capsys.readouterr().out)["recommendations"]
    assert [r["rank"] for r in rows] == [1, 2, 3]


@no_gpu
@pytest.mark.parametrize("command", ["train", "evaluate", "recommend"])
def test_cuda_without_a_gpu_is_exit_2_with_a_message(command, events_dir, cpu_checkpoint,
                                                     tmp_path, capsys):
    out, _ = cpu_checkpoint
    args = {
        "train": ["train", "--dataset", "events", "--data-dir", str(events_dir), "--model",
                  "gru", "--out", str(tmp_path / "never"), "--epochs", "1", "--quiet"],
        "evaluate": ["evaluate", "--checkpoint", str(out)],
        "recommend": ["recommend", "--checkpoint", str(out), "--user", "u0003"],
    }[command]
    assert main([*args, "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert "'cuda' was asked for" in err and "sees no CUDA GPU" in err
    assert "Traceback" not in err
    assert not (tmp_path / "never").exists()


def test_evaluate_refuses_device_for_a_baseline(events_dir, capsys):
    assert main(["evaluate", "--dataset", "events", "--data-dir", str(events_dir), "--model",
                 "pop", "--device", "auto"]) == 2
    assert "--device applies to --checkpoint" in capsys.readouterr().err
