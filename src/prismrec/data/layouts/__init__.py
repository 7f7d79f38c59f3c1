"""Loaders for upstream dataset layouts, one module per layout.

Each module exposes ``load(data_dir: Path, **opts) -> Dataset``; ``prismrec.data.registry``
names the datasets and which layout reads them.
"""
