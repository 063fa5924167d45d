"""``typoguard serve`` as a real process with its store: start, query, CLI, stop (for the store tests)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from typoguard.policyd.query import query, rcpt_request

CONFIG = """
[protect]
domains = ["army.mil", "navy.mil"]
[policy]
internal_senders = ["army.mil"]
[policyd]
listen = "127.0.0.1:0"
instance = "{node}"
metrics_listen = "127.0.0.1:{metrics_port}"
[log]
file = "{log}"
[store]
data_dir = "{data}"
node = "{node}"
refresh_interval = 0.2
flush_interval = 0.02
retry_interval = 0.2
{store_extra}
[http]
enabled = {http}
listen = "127.0.0.1:{http_port}"
workers = {http_workers}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    def __init__(
        self,
        exe: str,
        workdir: Path,
        *,
        node: str = "node-a",
        url: str = "",
        http: bool = False,
        http_workers: int = 1,
        store_extra: str = "",
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.exe = exe
        self.config = workdir / "typoguard.toml"
        self.log = workdir / "typoguard.jsonl"
        self.out = workdir / "serve.out"
        self.http_port = free_port() if http else 0
        self.metrics_port = free_port()
        self.config.write_text(
            CONFIG.format(
                node=node,
                log=self.log,
                data=workdir / "data",
                store_extra=(f'url = "{url}"\n' if url else "") + store_extra,
                http="true" if http else "false",
                http_port=self.http_port,
                http_workers=http_workers,
                metrics_port=self.metrics_port,
            )
        )
        self.address = ""
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def env() -> dict[str, str]:
        return {k: v for k, v in os.environ.items() if not k.startswith("TYPOGUARD_")}

    def start(self, timeout: float = 30) -> ServeProcess:
        with self.out.open("wb") as sink:
            self.proc = subprocess.Popen(
                [self.exe, "serve", "--config", str(self.config)],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=self.env(),
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(r"policy service: (127\.0\.0\.1:\d+)", self.out.read_text())
            if m:
                self.address = m.group(1)
                return self
            assert self.proc.poll() is None, self.out.read_text()
            time.sleep(0.05)
        raise AssertionError("typoguard serve did not start:\n" + self.out.read_text())

    def ask(self, recipient: str, sender: str = "alice@army.mil", **attrs: str) -> str:
        request = rcpt_request(sender, recipient)
        request.update(attrs)
        (reply,) = query(self.address, [request])
        return reply

    def records(self, event: str | None = None) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        text = self.log.read_text()
        text = text[: text.rfind("\n") + 1]  # the service may be writing the last line: read it next time
        out = [json.loads(x) for x in text.splitlines() if x.strip()]
        return [r for r in out if event is None or r.get("event") == event]

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [self.exe, *args, "--config", str(self.config)],
            capture_output=True, text=True, timeout=60, check=False, env=self.env(),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout

    def writer_pid(self) -> int | None:
        started = self.records("decision_writer_started")
        return int(started[-1]["pid"]) if started else None

    def metric(self, name: str) -> float:
        """One sample of the service's metrics page (``typoguard_store_backlog_bytes``)."""
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            for line in r.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        raise AssertionError(f"{name} not on the metrics page")

    def stop(self) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
