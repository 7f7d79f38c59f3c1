"""A dashboard-enabled ``prismrec serve`` on 127.0.0.1 for the /ui tests (a helper, no tests).

The checkpoint is a small GRU with an interest head and a text part (feature-hashing
encoder, so items can be searched), trained for 2 epochs on synthetic shop data with a
catalogue: 80 users, 60 items. ``prismrec serve`` runs as a subprocess with the access log
on, so tests can check that no key reaches the log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

CLIENT, ADMIN, DASHBOARD = "client-key-123", "admin-key-456", "dashboard-key-789"
KEYS = (CLIENT, ADMIN, DASHBOARD)


def build_checkpoint(folder: Path) -> Path:
    from prismrec.data.synthetic import generate
    from prismrec.recommender import Recommender
    from prismrec.text import HashingEncoder

    data = generate(n_users=80, n_items=60, seed=1).to_dataset()
    rec = Recommender("gru", model_config={"dim": 16, "interests": 3},
                      train_config={"epochs": 2, "progress": False, "threads": 1, "seed": 0})
    rec.fit(data, text=True, encoder=HashingEncoder(64))
    return rec.save(folder)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class UiServer:
    """``prismrec serve`` (or ``prismrec ui`` with ``command="ui"``) in a subprocess."""

    def __init__(self, checkpoint: Path, log: Path, store: str | None = None,
                 command: str = "serve", env: dict[str, str] | None = None,
                 extra: tuple[str, ...] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        base = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
        for name in ("PRISMREC_API_KEY", "PRISMREC_ADMIN_KEY", "PRISMREC_DASHBOARD_KEY"):
            base.pop(name, None)
        if env is None:
            env = ({"PRISMREC_API_KEY": CLIENT, "PRISMREC_ADMIN_KEY": ADMIN,
                    "PRISMREC_DASHBOARD_KEY": DASHBOARD} if command == "serve"
                   else {"PRISMREC_DASHBOARD_KEY": DASHBOARD})
        args = [sys.executable, "-m", "prismrec.cli", command, "--checkpoint", str(checkpoint),
                "--port", str(self.port)]
        if command == "serve":
            args += ["--store", store or "", "--access-log", "--log-level", "info"]
        args += extra
        self._out = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT,
                                     env={**base, **env}, start_new_session=True)

    def wait_ready(self, timeout: float = 90.0) -> UiServer:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: "
                                   + self.log.read_text())
            try:
                httpx.get(self.url + "/ui/login", timeout=2)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("server did not become ready: " + self.log.read_text())

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"X-API-Key": CLIENT}, timeout=30)

    def stop(self) -> None:
        if self._out.closed:  # stopped already
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self._out.close()
