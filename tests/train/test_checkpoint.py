"""Checkpoints: safetensors + JSON, validated on load, never unpickled."""

import json

import pytest
import torch

from prismrec.errors import CheckpointError
from prismrec.models import MODELS
from prismrec.testing import CYCLE_ITEMS, cycle_sequences
from prismrec.train import TrainConfig, load_checkpoint, save_checkpoint, score_sequences


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = MODELS["lstm"](CYCLE_ITEMS, {"dim": 8})
    path = save_checkpoint(tmp_path / "ck", model, train_config=TrainConfig(lr=3e-3),
                           meta={"note": "hello"}, extra={"numbers": torch.arange(5)})
    return path, model


def edit_json(path, change):
    doc = json.loads((path / "checkpoint.json").read_text())
    change(doc)
    (path / "checkpoint.json").write_text(json.dumps(doc))


def test_round_trip_restores_model_configs_meta_and_extra_tensors(saved):
    path, model = saved
    ck = load_checkpoint(path)
    seqs = cycle_sequences(5)
    torch.testing.assert_close(score_sequences(ck.model, seqs), score_sequences(model, seqs))
    assert ck.train_config.lr == 3e-3 and ck.meta == {"note": "hello"}
    assert ck.extra["numbers"].tolist() == [0, 1, 2, 3, 4]
    assert ck.info["format_version"] == 1 and ck.info["model"] == "lstm"
    assert ck.info["tensors"]["model.rnn.weight_ih_l0"]["shape"] == [32, 8]


def test_text_vectors_travel_with_the_weights(tmp_path):
    text = torch.randn(CYCLE_ITEMS, 6)
    model = MODELS["sasrec"](CYCLE_ITEMS, {"dim": 8, "embedding": "text"}, text_vectors=text)
    back = load_checkpoint(save_checkpoint(tmp_path / "t", model)).model
    torch.testing.assert_close(back.items.text_vectors[1:], text)


def test_loading_never_unpickles(saved, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", refuse)
    load_checkpoint(saved[0])


def test_missing_folder_or_file_is_a_clear_error(saved, tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(tmp_path / "nowhere")
    (saved[0] / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="missing model.safetensors"):
        load_checkpoint(saved[0])


def test_corrupt_weights_fail_the_checksum(saved):
    w = saved[0] / "model.safetensors"
    data = bytearray(w.read_bytes())
    data[-3] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        load_checkpoint(saved[0])


def test_unreadable_safetensors_is_reported_as_such(saved):
    import hashlib

    w = saved[0] / "model.safetensors"
    w.write_bytes(b"\x80\x04not a safetensors file")  # e.g. a pickle put in its place
    edit_json(saved[0], lambda d: d.update(sha256=hashlib.sha256(w.read_bytes()).hexdigest()))
    with pytest.raises(CheckpointError, match="not a readable safetensors"):
        load_checkpoint(saved[0])


def test_wrong_format_version_names_both_versions(saved):
    edit_json(saved[0], lambda d: d.update(format_version=99))
    with pytest.raises(CheckpointError, match="version 99.*reads version 1"):
        load_checkpoint(saved[0])


def test_shape_mismatch_names_the_tensor(saved):
    edit_json(saved[0], lambda d: d["model_config"].update(dim=16))
    with pytest.raises(CheckpointError, match="tensor 'model.*' has shape"):
        load_checkpoint(saved[0])


def test_invalid_json_and_unknown_model_are_checkpoint_errors(saved):
    edit_json(saved[0], lambda d: d.update(model="bert4rec"))
    with pytest.raises(CheckpointError, match="unknown model 'bert4rec'"):
        load_checkpoint(saved[0])
    (saved[0] / "checkpoint.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(saved[0])


def test_saving_again_replaces_both_files_consistently(saved):
    path, model = saved
    with torch.no_grad():
        model.out_bias += 1.0
    save_checkpoint(path, model)
    torch.testing.assert_close(load_checkpoint(path).model.out_bias, model.out_bias)
    assert not list(path.glob(".*tmp*"))
