"""The public surface of prismrec.explain: listed, importable, and free of heavy imports."""

from __future__ import annotations

import subprocess
import sys

import prismrec.explain as explain


def test_every_public_name_is_listed_and_importable():
    assert explain.__all__ == sorted(explain.__all__)
    for name in explain.__all__:
        assert getattr(explain, name) is not None
    public = {n for n in vars(explain) if not n.startswith("_") and n[0].isupper()}
    assert public <= set(explain.__all__)


def test_importing_explain_loads_no_language_model_library():
    code = ("import sys, prismrec.explain; "
            "print(sorted(m for m in ('torch', 'transformers', 'gguf') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
