"""The app factory each uvicorn worker process calls when ``prismrec serve --workers N``.

uvicorn starts workers by import string, so the parent (the ``serve`` command) hands them
its configuration, keys included, as JSON in a file only its user can read (mode 0600, in a
0700 folder removed when the service stops); the environment carries only that file's path
(``PRISMREC_SERVE_CONFIG_FILE``), never a key. Each worker loads the checkpoint and opens
the (shared) store itself.
"""

from __future__ import annotations

import gc
import json
import os
from dataclasses import dataclass, field
from typing import Any

CONFIG_FILE_ENV = "PRISMREC_SERVE_CONFIG_FILE"


@dataclass
class WorkerConfig:
    checkpoint: str
    store: str
    threads: int = 1
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"checkpoint": self.checkpoint, "store": self.store,
                           "threads": self.threads, "settings": self.settings})

    @classmethod
    def from_json(cls, text: str) -> WorkerConfig:
        return cls(**json.loads(text))


def build(config: WorkerConfig):
    """Load the checkpoint, open the store and make the app (used by single and multi-worker)."""
    import torch

    from prismrec.profile.live import LiveProfiles
    from prismrec.profile.store import open_store
    from prismrec.recommender import Recommender
    from prismrec.serve.app import create_app
    from prismrec.serve.settings import ServeSettings

    torch.set_num_threads(max(1, int(config.threads)))
    settings = ServeSettings.from_dict(config.settings)
    settings.validate()
    rec = Recommender.load(config.checkpoint)
    store = open_store(config.store)
    return create_app(LiveProfiles(rec, store), settings, checkpoint_dir=config.checkpoint)


def settle() -> None:
    """Move everything loaded so far (model, vocabularies, caches) out of the garbage
    collector's sight, once, before serving.

    A full collection walks every tracked object; with a 100k-item catalogue that is tens of
    milliseconds, paid by whichever request triggers it. Objects made before this call are
    never collected, which is right for a server process that keeps them to its end (and is
    why only server entry points call it, not ``create_app``).
    """
    gc.collect()
    gc.freeze()


def app_from_environ():
    """uvicorn factory: ``uvicorn --factory prismrec.serve.worker:app_from_environ``."""
    path = os.environ.get(CONFIG_FILE_ENV)
    if not path:
        raise RuntimeError(f"{CONFIG_FILE_ENV} is not set: start workers with `prismrec serve`")
    with open(path, encoding="utf-8") as f:
        app = build(WorkerConfig.from_json(f.read()))
    settle()
    return app
