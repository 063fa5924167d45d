"""Running an audit: read every task (in parallel where it pays), join partial records, return events.

Plain line logs are cut into ~64 MiB byte ranges and compressed files are read whole, one task each, by a
pool of worker processes (``fork``: the compiled Guard is inherited, not rebuilt). Small inputs are read
in-process, where a pool would cost more than it saves. Each worker returns only the look-alike records it
found, so what crosses process boundaries is small whatever the size of the logs.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from multiprocessing.reduction import ForkingPickler
from pathlib import Path
from typing import Any

from typoguard.audit.classify import Classifier, DomainAssessor, decode
from typoguard.audit.exim import EximScanner
from typoguard.audit.model import AuditEvent, Partial, SourceStats, merge_partials
from typoguard.audit.postfix import PostfixScanner
from typoguard.audit.reading import byte_blocks, line_blocks
from typoguard.audit.sendmail import SendmailScanner
from typoguard.audit.sources import Format, ProgressHook, Task, plan, progress_hook, saved_streams
from typoguard.audit.timeparse import reference_time
from typoguard.audit.unwrap import Unwrapper

LOOKBACK = 16 << 20  # bytes before a chunk searched for the sender of a message that starts there
LOOKAHEAD = 1 << 20  # bytes after a chunk searched for the sender of a Sendmail refusal near its end
PARALLEL_MIN_BYTES = 48 << 20  # below this, worker start-up costs more than it saves


@dataclass(slots=True)
class TaskResult:
    partials: list[Partial]
    expired: set[tuple[str, ...]]
    stats: SourceStats

    def __reduce__(self) -> tuple[Callable[..., TaskResult], tuple[Any, ...]]:
        # A worker's result crosses to the parent as columns (one list per field), not as one object per
        # partial: ~4x less time to pickle and unpickle. Shared values (a Hit, the source name) are
        # pickled once and referred to after.
        columns = list(zip(*(p.__reduce__()[1] for p in self.partials), strict=True))
        return _unpack, (columns, self.expired, self.stats)


def _unpack(columns: list[tuple[Any, ...]], expired: set[tuple[str, ...]], stats: SourceStats) -> TaskResult:
    return TaskResult([Partial(*row) for row in zip(*columns, strict=True)], expired, stats)


@dataclass(slots=True)
class AuditResult:
    """Everything an audit found: the events, the counters of what was read, and the inputs' problems."""

    events: list[AuditEvent]
    stats: SourceStats
    inputs: list[str] = field(default_factory=list)
    formats: dict[str, int] = field(default_factory=dict)  # format -> number of inputs


def run_task(task: Task, classifier: Classifier) -> TaskResult:
    """Read one task. Never raises for bad content; unreadable inputs become ``stats.errors``."""
    stats = SourceStats()
    try:
        if task.fmt in (Format.POSTFIX, Format.EXIM, Format.SENDMAIL):
            return _run_lines(task, classifier, stats)
        # Imported here: a log audit does not need them (the e-mail parser alone costs ~10 ms of start-up).
        from typoguard.audit import exchange, m365, mailbox

        readers = {
            Format.M365: lambda: m365.read(task, classifier, stats),
            Format.EXCHANGE: lambda: exchange.read(task, classifier, stats),
            Format.MBOX: lambda: mailbox.read_mbox(task, classifier, stats),
            Format.MAILDIR: lambda: mailbox.read_maildir(task, classifier, stats),
            Format.EML: lambda: mailbox.read_eml(task.path, task.name, classifier, stats, "eml"),
        }
        partials = list(readers[task.fmt]())
        return TaskResult(partials, set(), stats)
    except OSError as exc:
        stats.errors.append(f"{task.name}: {exc.strerror or exc}")
        return TaskResult([], set(), stats)


def _run_lines(task: Task, classifier: Classifier, stats: SourceStats) -> TaskResult:
    scanner: PostfixScanner | EximScanner | SendmailScanner
    if task.fmt is Format.POSTFIX:
        scanner = PostfixScanner(classifier, task.name, reference_time(task.path), stats)
        for block in byte_blocks(task, stats):
            scanner.feed(block)
    else:
        scanner_type = SendmailScanner if task.fmt is Format.SENDMAIL else EximScanner
        scanner = scanner_type(classifier, task.name, reference_time(task.path), stats)
        for lines in line_blocks(task, stats):
            scanner.feed(lines)
    if isinstance(scanner, SendmailScanner) and task.end is not None and scanner.waiting():
        # Sendmail logs a transaction's from= line after its refusals at RCPT: it may be in the next chunk.
        with task.path.open("rb") as f:
            f.seek(task.end)
            scanner.resolve_ahead(_unwrapped(task, f.read(LOOKAHEAD)))
    missing = scanner.unresolved()
    if missing and task.start > 0:
        _resolve_from_earlier(task, missing, type(scanner))
    return TaskResult(scanner.partials, scanner.expired, stats)


def _resolve_from_earlier(
    task: Task,
    missing: list[tuple[Partial, int]],
    scanner_type: type[PostfixScanner] | type[EximScanner] | type[SendmailScanner],
) -> None:
    """Senders and Message-IDs the scanner did not find near a delivery: first in the bytes just before the
    chunk (a message cut by the chunk boundary), then in the task itself up to the delivery (a message whose
    ``from=`` line is far back, e.g. a long list of recipients). For a queue id seen several times, the last
    line wins. ``missing`` holds (partial, offset of its line in the task)."""

    def fill(
        senders: dict[bytes, bytes], message_ids: dict[bytes, bytes], todo: list[tuple[Partial, int]]
    ) -> None:
        for p, _at in todo:
            qid = p.queue_id.encode("ascii", "replace")
            sender = senders.get(qid) if p.sender is None else None
            if sender is not None:
                p.sender = decode(sender) or "<>"
            if not p.message_id:
                p.message_id = scanner_type.message_id_of(message_ids.get(qid))

    if task.start > 0:
        begin = max(0, task.start - LOOKBACK)
        with task.path.open("rb") as f:
            f.seek(begin)
            earlier = _unwrapped(task, f.read(task.start - begin))
        fill(
            *scanner_type.lookback(earlier, {p.queue_id.encode("ascii", "replace") for p, _at in missing}),
            missing,
        )
    todo = [(p, at) for p, at in missing if at > 0 and (p.sender is None or not p.message_id)]
    if not todo:
        return
    wanted = {p.queue_id.encode("ascii", "replace") for p, _at in todo}
    senders: dict[bytes, bytes] = {}
    message_ids: dict[bytes, bytes] = {}
    done = 0
    limit = max(at for _p, at in todo)  # an offset in the lines the scanner read (unwrapped, if wrapped)
    end = task.end if task.end is None or task.wrapper is not None else min(task.end, task.start + limit)
    part = replace(task, end=end)
    with progress_hook(_ignore):  # read a second time: not progress
        for block in byte_blocks(part, SourceStats()):
            found_senders, found_ids = scanner_type.lookback(block, wanted)
            senders.update(found_senders)
            message_ids.update(found_ids)
            done += len(block)
            if done >= limit:
                break
    fill(senders, message_ids, todo)


def _unwrapped(task: Task, data: bytes) -> bytes:
    """Raw bytes of a task's file (before or after its range) as the log lines the scanner reads; a line
    cut by the range's edge is no record and is dropped."""
    if task.wrapper is None:
        return data
    return Unwrapper(task.wrapper, task.fmt.value).block(data)


def _ignore(nbytes: int) -> None:
    pass


# Worker processes inherit the classifier and the shared byte counter through fork: they are put here just
# before the pool starts.
_WORKER: dict[str, Any] = {}


def _count(nbytes: int) -> None:
    counter = _WORKER["counter"]
    with counter.get_lock():
        counter.value += nbytes


def _worker(task: Task) -> tuple[Task, TaskResult | str]:
    """Read ``task``; hand its result back as a file in the parent's private directory when there is one.

    Why a file: through the pool's pipe (64 KiB at a time) a worker waits for the parent to read all of its
    result, ~4 MB per 50 MB of log, before it can start its next task; written to a file it goes on at once,
    and the parent reads the file in one call while both workers are busy."""
    with progress_hook(_count):
        result = run_task(task, _WORKER["classifier"])
    spool = _WORKER.get("spool")
    if spool is None:
        return task, result
    path = None
    try:
        fd, path = tempfile.mkstemp(dir=spool, suffix=".result")
        with os.fdopen(fd, "wb") as f:
            f.write(ForkingPickler.dumps(result))
    except OSError:  # the temporary directory's disk is full: through the pipe, as without one
        if path is not None:
            with contextlib.suppress(OSError):
                os.unlink(path)
        return task, result
    return task, path


def _received(item: tuple[Task, TaskResult | str]) -> tuple[Task, TaskResult]:
    task, result = item
    if isinstance(result, str):
        path = Path(result)
        loaded = pickle.loads(path.read_bytes())  # written by our own worker, in our 0700 directory
        path.unlink()
        return task, loaded
    return task, result


def _results(
    tasks: list[Task], classifier: Classifier, guard: DomainAssessor, jobs: int, on_progress: ProgressHook
) -> Iterator[tuple[Task, TaskResult]]:
    total = sum(t.size for t in tasks)
    methods = multiprocessing.get_all_start_methods()
    if jobs <= 1 or len(tasks) <= 1 or total < PARALLEL_MIN_BYTES or "fork" not in methods:
        with progress_hook(on_progress):
            for task in tasks:
                yield task, run_task(task, classifier)
        return
    ctx = multiprocessing.get_context("fork")
    counter = ctx.Value("q", 0)
    _WORKER.update(classifier=Classifier(guard), counter=counter)
    # Results come back as files in a private directory (``_worker``), removed at the end; without a
    # writable temporary directory they come back through the pool's pipe.
    with contextlib.suppress(OSError):
        _WORKER["spool"] = tempfile.mkdtemp(prefix="typoguard-audit-")
    # Most work first, so one big compressed file does not start last and run alone (logs compress ~6x).
    ordered = sorted(tasks, key=lambda t: -t.size * (6 if t.compressed else 1))
    reported = 0
    try:
        with ctx.Pool(min(jobs, len(tasks))) as pool:
            results = pool.imap_unordered(_worker, ordered)
            while True:
                try:
                    item = results.next(timeout=0.2)
                except multiprocessing.TimeoutError:
                    item = None
                except StopIteration:
                    break
                done = counter.value
                if done > reported:
                    on_progress(done - reported)
                    reported = done
                if item is not None:
                    yield _received(item)
    finally:
        spool = _WORKER.get("spool")
        _WORKER.clear()
        if spool is not None:
            shutil.rmtree(spool, ignore_errors=True)


def audit(
    inputs: Iterable[Path],
    guard: DomainAssessor,
    *,
    fmt: Format = Format.AUTO,
    jobs: int | None = None,
    chunk_bytes: int = 64 << 20,
    on_plan: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> AuditResult:
    """Audit ``inputs`` (files, rotated sets, directories, Maildirs; ``-`` standard input and pipes named
    here are read whole and saved first) for mail to look-alike domains.

    ``on_plan(total_bytes)`` is called once the inputs are known, ``on_progress(bytes)`` as input bytes
    (on disk, before decompression) are read.
    """
    with saved_streams(list(inputs)) as (paths, labels, saving):
        return _audit(paths, labels, saving, guard, fmt, jobs, chunk_bytes, on_plan, on_progress)


def _audit(  # noqa: PLR0917 - audit()'s arguments, passed on
    inputs: list[Path],
    labels: dict[Path, str],
    saving: list[str],
    guard: DomainAssessor,
    fmt: Format,
    jobs: int | None,
    chunk_bytes: int,
    on_plan: Callable[[int], None] | None,
    on_progress: Callable[[int], None] | None,
) -> AuditResult:
    workers = jobs or os.cpu_count() or 1
    tasks, problems = plan(inputs, fmt, chunk_bytes, labels)
    ranged = sum(t.size for t in tasks if t.end is not None)
    if workers > 1 and ranged:
        # Cut plain logs into a multiple of the worker count of equal ranges (202 MB on 2 workers: 4 x 50 MB,
        # not 3 x 64 MiB + 10 MB, where one worker reads twice what the other does).
        count = workers * -(-ranged // (workers * chunk_bytes))
        even = -(-ranged // count)
        if even < chunk_bytes:
            tasks, problems = plan(inputs, fmt, even, labels)
    problems = [*saving, *problems]
    if on_plan is not None:
        on_plan(sum(t.size for t in tasks))
    classifier = Classifier(guard)
    stats = SourceStats(errors=list(problems))
    partials: list[Partial] = []
    expired: set[tuple[str, ...]] = set()
    formats: dict[str, int] = {}
    seen: set[str] = set()
    progress = on_progress if on_progress is not None else _ignore
    for task, result in _results(tasks, classifier, guard, workers, progress):
        partials.extend(result.partials)
        expired |= result.expired
        stats.add(result.stats)
        if task.name not in seen:
            seen.add(task.name)
            formats[task.fmt.value] = formats.get(task.fmt.value, 0) + 1
    return AuditResult(merge_partials(partials, expired), stats, sorted(seen), formats)
