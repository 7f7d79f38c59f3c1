"""Shared by the bench scripts: machine facts and writing one section of docs/benchmarks.md.

Each script owns one section, fenced by HTML comments, so scripts can be re-run in any order
without clobbering each other's figures.
"""

from __future__ import annotations

import os
import platform
import re
import resource
import sys
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
SHARED_DATA = ROOT.parent / "shared" / "data"

HEADER = """# Benchmarks

Every figure here was printed by a script under `bench/` and written by it into this page.
Re-run a script to refresh its section. Machine facts are recorded per section.
"""


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({cpu}), torch {torch.__version__} with "
            f"{torch.get_num_threads()} threads, Python {platform.python_version()}, "
            f"{date.today()}")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def command() -> str:
    return "python " + " ".join([str(Path(sys.argv[0]).relative_to(ROOT))
                                 if Path(sys.argv[0]).is_absolute() else sys.argv[0],
                                 *sys.argv[1:]])


def write_section(name: str, body: str) -> None:
    """Replace (or append) the section called ``name`` in docs/benchmarks.md."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text() if DOC.exists() else HEADER
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else \
        text.rstrip() + "\n\n" + block + "\n"
    DOC.write_text(text)


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    def fmt(v) -> str:
        if isinstance(v, float):
            return f"{v:.4f}" if abs(v) < 10 else f"{v:.1f}"
        return str(v)

    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    out += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(out)
