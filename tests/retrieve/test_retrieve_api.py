"""The public surface of prismrec.retrieve."""

from __future__ import annotations

import types

import prismrec.retrieve as retrieve


def test_public_names_are_exactly_all():
    public = {n for n, v in vars(retrieve).items()
              if not n.startswith("_") and not isinstance(v, types.ModuleType)}
    assert public == set(retrieve.__all__)
    assert retrieve.__all__ == sorted(retrieve.__all__)


def test_importing_retrieve_does_not_import_faiss():
    import subprocess
    import sys

    code = "import sys, prismrec.retrieve; print('faiss' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
