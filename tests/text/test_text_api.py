"""The public surface of prismrec.text, and what importing it costs."""

from __future__ import annotations

import subprocess
import sys

import prismrec.text


def test_public_names_are_exactly_all():
    public = {n for n in dir(prismrec.text) if not n.startswith("_")}
    assert public == set(prismrec.text.__all__)


def test_import_loads_no_model_library():
    code = ("import sys, prismrec.text; "
            "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_default_encoder_is_named_without_loading_the_model():
    enc = prismrec.text.default_encoder()
    assert enc.name == "all-MiniLM-L6-v2"
    assert not enc.loaded
