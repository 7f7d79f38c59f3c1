"""The public surface: what ``__all__`` promises can be imported, and nothing private leaks."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

PACKAGES = ["prismrec", "prismrec.data", "prismrec.eval", "prismrec.text", "prismrec.models",
            "prismrec.train", "prismrec.profile", "prismrec.retrieve", "prismrec.explain",
            "prismrec.runs"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_resolve_and_are_public(name):
    module = importlib.import_module(name)
    assert module.__all__, f"{name} lists no public names"
    for attr in module.__all__:
        assert not attr.startswith("_") or attr == "__version__"
        assert getattr(module, attr) is not None


def test_import_prismrec_does_not_load_torch():
    code = "import sys, prismrec; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
