"""A real ``SinkServer`` on an ephemeral loopback port, in a thread, and the test configuration."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typoguard.config import Config
from typoguard.obs import JsonLog
from typoguard.sink.server import SinkServer

BASE_TOML = """
[protect]
domains = ["army.mil", "navy.mil", "gmail.com"]
[store]
data_dir = "data"
[log]
file = "{log}"
[sink]
listen = ["127.0.0.1:0"]
domains = ["army-mil.com", "weird.example"]
hostname = "sink.test"
flush_interval = 0.2
"""


def _toml_value(v: Any) -> str:
    if isinstance(v, str):
        return json.dumps(v)  # a JSON string is a TOML basic string
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return str(v)


def write_config(root: Path, **sink: Any) -> Path:
    """The base config with ``[sink]`` keys overridden; returns its path."""
    head, _, body = BASE_TOML.replace("{log}", str(root / "sink.log")).partition("[sink]\n")
    lines = [
        *head.splitlines(),
        "[sink]",
        *(ln for ln in body.splitlines() if ln.split(" = ")[0] not in sink),
    ]
    lines += [f"{k} = {_toml_value(v)}" for k, v in sink.items()]
    path = root / "typoguard.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


class RunningSink:
    """A started sink: ``port``, ``config``, ``log_path``; ``flush()`` writes the counts now."""

    def __init__(
        self,
        config: Config,
        config_path: Path | None = None,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] = asyncio.new_event_loop,
    ) -> None:
        self.config = config
        self.log_path = Path(config.base_dir) / "sink.log"
        self.log = JsonLog(level="info", path=str(self.log_path))
        self.server = SinkServer.build(config, self.log, config_path=config_path)
        self.loop = loop_factory()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(self.server.start())
        self.port = self.server.ports[0]

    def call(self, coro: Any, timeout: float = 10.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def flush(self) -> None:
        self.call(self.server.flush())

    def stop(self) -> None:
        self.call(self.server.drain())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
        if self.server.store is not None:
            self.server.store.close()
        self.log.close()
