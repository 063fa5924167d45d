"""``typoguard watch``: look-alikes coming alive in DNS and leak patterns in the decision log, as events and
alerts (docs/watch.md). Registered by ``typoguard.cli.app`` through ``COMMANDS``.

Exit codes of ``--once``: 0 the round ran and found nothing new, 1 it raised new events, 2 usage or
configuration error, 3 DNS unusable (the round failed: nothing classified, no event; ADR 0019).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import signal
import sys
from pathlib import Path
from typing import Any

import click
import orjson

from typoguard.cli.common import (
    EXIT_DNS_UNUSABLE,
    EXIT_FLAGGED,
    UsageFailure,
    config_option,
    guard_from_options,
)
from typoguard.errors import TypoguardError


def _queue(config: Any) -> Any:
    """The hold queue to check for mail waiting too long, or None where there is none to read."""
    from typoguard.held import HoldQueues, PostfixQueue

    try:
        return HoldQueues.from_config(config, PostfixQueue.from_config(config))
    except TypoguardError:
        return None


@click.command()
@config_option
@click.option("--once", is_flag=True, help="One round now, then exit (cron, a systemd timer, a test).")
@click.option("--json", "as_json", is_flag=True, help="--once: the round's report as JSON.")
@click.option("--no-held", is_flag=True, help="Do not read the hold queue this time.")
@click.option("--wait", type=click.FloatRange(min=0), default=30.0, show_default=True,
              help="--once: seconds to let queued alerts go out before exiting.")  # fmt: skip
def watch(config_path: Path | None, once: bool, as_json: bool, no_held: bool, wait: float) -> None:
    """Watch for look-alikes coming alive and for leak patterns; store events and send alerts.

    Each round checks that the protected domains resolve (else it fails: "DNS unusable"), rescans their
    look-alikes against the stored history, reads the decision log and the hold queue, stores what is new
    as events and alerts [[alert]] destinations. Without --once: a round every [watch] every, until stopped.
    """
    from typoguard.store import open_store
    from typoguard.watch.companion import Watch

    guard = guard_from_options(config_path, (), ())
    config = guard.config
    if not config.store.enabled:
        raise UsageFailure(
            "typoguard watch keeps its history and events in the store: [store] enabled = false"
        )
    try:
        store = open_store(config)
    except TypoguardError as exc:
        raise UsageFailure(str(exc)) from None
    try:
        queue = None if no_held else _queue(config)
        runner = Watch(config, guard, store, queue=queue, log=_log)
    except TypoguardError as exc:
        store.close()  # PostgreSQL: its session, not left to the garbage collector
        raise UsageFailure(str(exc)) from None
    try:
        if not once:
            _foreground(runner, config_path)
            return
        try:
            report = runner.round()
        except TypoguardError as exc:
            raise UsageFailure(str(exc)) from None
        runner.close(wait)
    finally:
        store.close()
    if as_json:
        doc = {**report.to_dict(), "alerts": runner.dispatcher.stats()}
        sys.stdout.write(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode() + "\n")
    if not report.ok:
        click.echo(f"typoguard: {report.failure}", err=True)
        sys.exit(EXIT_DNS_UNUSABLE)
    if not as_json:
        _summary(report, runner.dispatcher.stats())
    if report.new_events:
        sys.exit(EXIT_FLAGGED)


STOP_WAIT = 5.0  # at SIGTERM: seconds queued alerts may take to go out (as in typoguard serve)


def _foreground(runner: Any, config_path: Path | None) -> None:
    """Rounds every ``[watch] every`` (jittered) until SIGTERM or SIGINT (then exit 0 after queued alerts had
    ``STOP_WAIT`` seconds to go out); SIGHUP reads the config file again, as ``typoguard serve`` does (a
    config that cannot be used is logged and the old one kept). ``[watch] metrics_listen``: a metrics page."""
    config = runner.config
    address = config.watch.metrics_address
    if address is not None:
        from prometheus_client import start_http_server
        from prometheus_client.registry import CollectorRegistry

        from typoguard.obs import WatchCollector

        registry = CollectorRegistry(auto_describe=False)
        registry.register(WatchCollector(runner))
        try:
            start_http_server(address.port, addr=address.host, registry=registry)
        except OSError as exc:
            raise UsageFailure(f"[watch] metrics_listen {address}: {exc.strerror or exc}") from None
    click.echo(f"typoguard watch: a round every {config.watch.every} (SIGTERM or Ctrl-C to stop)", err=True)
    asyncio.run(_run_until_stopped(runner, config_path))
    runner.close(STOP_WAIT)
    _log("info", "watch_stopped", rounds=runner.rounds, alerts=runner.dispatcher.stats())


async def _run_until_stopped(runner: Any, config_path: Path | None) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    reloads: set[asyncio.Task[None]] = set()  # referenced until done (the loop keeps only weak ones)

    def hangup() -> None:
        task = loop.create_task(_reload(runner, config_path))
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, hangup)
    task = loop.create_task(runner.run_forever())
    await stop.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task  # a round already in its thread finishes first (asyncio.run waits for it)


async def _reload(runner: Any, config_path: Path | None) -> None:
    """SIGHUP: the config file again, a new Guard; on any problem the old ones stay."""
    from typoguard.config import load_config
    from typoguard.guard import Guard

    if config_path is None:
        _log("warning", "watch_reload_skipped", reason="no config file")
        return
    try:
        config = await asyncio.to_thread(load_config, config_path)
        guard = await asyncio.to_thread(Guard.from_config, config)
        if not guard.index.protected:
            raise UsageFailure("nothing to protect")
        runner.reload(config, guard)
    except (TypoguardError, UsageFailure) as exc:
        message = exc.message if isinstance(exc, UsageFailure) else str(exc)
        _log("error", "watch_reload_failed", config=str(config_path), error=message, kept="old config")
        return
    _log("info", "watch_reloaded", config=str(config_path), protected=len(guard.index.protected),
         every=config.watch.every)  # fmt: skip


def _summary(report: Any, stats: list[dict[str, Any]]) -> None:
    click.echo(
        f"round: {report.lookalikes} look-alikes, {report.queries} DNS queries, {report.seconds:.1f} s; "
        f"{len(report.new_events)} new event(s), {len(report.alerts)} alerted"
    )
    for e in report.new_events:
        click.echo(f"  [{e.severity}] #{e.id} {e.kind} {e.subject}: {e.summary}")
    for s in stats:
        click.echo(f"  alert {s['name']}: sent {s['sent']}, failed {s['failed']}, dropped {s['dropped']}")
    for note in report.notes:
        click.echo(f"  note: {note}")


def _log(level: str, event: str, **fields: Any) -> None:
    stamp = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    click.echo(orjson.dumps({"time": stamp, "level": level, "event": event, **fields}).decode(), err=True)


COMMANDS: list[click.Command] = [watch]
