"""Local language models: the packaged all-MiniLM-L6-v2 and any local model directory."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest
import torch

from prismrec.data import Catalog
from prismrec.errors import MissingExtraError
from prismrec.text import (
    EncoderError,
    SentenceTransformerEncoder,
    default_encoder,
    encode_catalog,
)

torch.set_num_threads(2)


@pytest.fixture(scope="session")
def minilm() -> SentenceTransformerEncoder:
    """The real default model, loaded once for the session."""
    enc = default_encoder()
    enc.load()
    return enc


@pytest.mark.slow
def test_related_texts_are_closer_than_unrelated(minilm):
    shoes, sneakers, knife = minilm.encode(["running shoes", "jogging sneakers",
                                            "kitchen knife"])
    assert shoes @ sneakers > shoes @ knife + 0.3
    assert shoes @ sneakers > sneakers @ knife + 0.3


@pytest.mark.slow
def test_output_is_float32_unit_vectors_of_384(minilm):
    out = minilm.encode(["a", "b c", "d e f"])
    assert minilm.dim == 384
    assert out.dtype == np.float32 and out.shape == (3, 384)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, rtol=1e-5)


@pytest.mark.slow
def test_encoding_is_deterministic_and_independent_of_batching(minilm):
    texts = ["microscope slide", "a much longer text about laboratory glassware", "beaker"]
    together = minilm.encode(texts)
    np.testing.assert_array_equal(together, minilm.encode(texts))
    alone = np.concatenate([minilm.encode([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


@pytest.mark.slow
def test_max_seq_length_truncates_what_the_model_reads(minilm):
    head = "cordless drill with two batteries"
    texts = [head + " and a hard case for the workshop", head + " sold by a kitchen shop"]
    short = SentenceTransformerEncoder(max_seq_length=8)  # [CLS] + 6 words + [SEP]
    assert short.seq_length == 8 and minilm.seq_length == 256
    a, b = short.encode(texts)
    np.testing.assert_allclose(a, b, atol=1e-6)  # the differing tails were cut
    full = minilm.encode(texts)
    assert full[0] @ full[1] < 0.99
    assert short.name != minilm.name


@pytest.mark.slow
def test_a_saved_model_directory_loads_through_the_same_backend(minilm, tmp_path):
    minilm.load().save(str(tmp_path / "my-model"))
    local = SentenceTransformerEncoder(tmp_path / "my-model", batch_size=2)
    texts = ["soldering iron", "lab coat", "nitrile gloves"]
    np.testing.assert_allclose(local.encode(texts), minilm.encode(texts), atol=1e-5)
    assert local.name == str((tmp_path / "my-model").resolve())


@pytest.mark.slow
def test_bfloat16_option_gives_float32_vectors_close_to_float32_ones(minilm):
    texts = ["digital caliper", "pH test strips", "cordless drill with two batteries"]
    fast = SentenceTransformerEncoder(dtype="bfloat16")
    out = fast.encode(texts)
    assert out.dtype == np.float32 and out.shape == (3, 384)
    assert np.all((out * minilm.encode(texts)).sum(1) > 0.99)
    assert fast.name == "all-MiniLM-L6-v2;bfloat16"


VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "red", "blue", "shoe", "shoes", "knife",
         "kitchen", "running", "a", "the"]


@pytest.fixture
def tiny_bert_dir(tmp_path):
    """A plain Hugging Face BERT directory (random weights, our vocabulary): no pooling config."""
    from transformers import BertConfig, BertModel, BertTokenizer

    torch.manual_seed(0)
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    tok = BertTokenizer(vocab_file=str(tmp_path / "vocab.txt"))
    cfg = BertConfig(vocab_size=len(VOCAB), hidden_size=16, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=32)
    out = tmp_path / "tiny-bert"
    BertModel(cfg).eval().save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.mark.slow
def test_plain_hugging_face_directory_is_mean_pooled(tiny_bert_dir):
    from transformers import AutoModel, AutoTokenizer

    texts = ["red running shoes", "the kitchen knife", "blue shoe"]
    got = SentenceTransformerEncoder(tiny_bert_dir).encode(texts)

    tok, model = AutoTokenizer.from_pretrained(tiny_bert_dir), AutoModel.from_pretrained(
        tiny_bert_dir).eval()
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**batch).last_hidden_state  # (N, T, 16)
    mask = batch["attention_mask"].unsqueeze(-1).float()  # (N, T, 1)
    mean = (hidden * mask).sum(1) / mask.sum(1)  # (N, 16)
    want = torch.nn.functional.normalize(mean, dim=1).numpy()
    assert got.shape == (3, 16) and got.dtype == np.float32
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.slow
def test_fully_cached_catalogue_never_loads_the_model(minilm, tmp_path):
    cat = Catalog.from_frame(pd.DataFrame({"item": ["x", "y"],
                                           "title": ["pipette tips", "safety goggles"]}))
    first = encode_catalog(cat, minilm, cache_dir=tmp_path, progress=False)
    fresh = default_encoder()
    again = encode_catalog(cat, fresh, cache_dir=tmp_path, progress=False)
    assert not fresh.loaded
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, minilm.encode(["pipette tips", "safety goggles"]),
                               atol=1e-5)


def test_model_that_is_not_local_is_an_error_not_a_download(tmp_path):
    enc = SentenceTransformerEncoder("someone/not-on-this-machine")
    with pytest.raises(EncoderError, match="never downloads.*save it to a directory"):
        enc.encode(["x"])


def test_missing_extra_gives_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # as if not installed
    with pytest.raises(MissingExtraError, match=r"pip install 'prismrec\[text\]'"):
        SentenceTransformerEncoder().encode(["x"])


@pytest.mark.parametrize("kwargs", [{"batch_size": 0}, {"max_seq_length": 1},
                                    {"dtype": "float16"}])
def test_bad_settings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        SentenceTransformerEncoder(**kwargs)


def test_incomplete_model_directory_is_named_in_the_error(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(EncoderError, match=rf"directory {tmp_path}"):
        SentenceTransformerEncoder(tmp_path).encode(["x"])
