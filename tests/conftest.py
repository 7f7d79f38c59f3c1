"""Shared fixtures: thread limits for a 2-core machine and the path to the real datasets."""

from __future__ import annotations

import os
from pathlib import Path

# Idle OpenMP threads spin by default; on a busy 2-core machine that makes small torch ops
# 30-100x slower. Must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data beside the repo, or skip the test with the reason."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real datasets not found at {SHARED_DATA}")
    return SHARED_DATA
