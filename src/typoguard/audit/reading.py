"""Reading a line-oriented log task as blocks of lines, in constant memory, surviving damaged streams."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from typoguard.audit.model import SourceStats
from typoguard.audit.sources import STREAM_ERRORS, Task, compression, open_bytes, report_progress
from typoguard.audit.unwrap import Unwrapper

BLOCK = 4 << 20  # bytes read at a time: large enough to amortise the split, small enough to stay flat
MAX_LINE = 1 << 20  # of one line gathered across blocks; the rest of a longer line (damage) is skipped


def byte_blocks(task: Task, stats: SourceStats) -> Iterator[bytes]:
    """The task's bytes in blocks of whole lines (each ends with a newline, except perhaps the last).

    A truncated or corrupt compressed stream ends the input early and is recorded in ``stats.errors``; what
    was read before the damage is kept, except a half line at the point of damage. A wrapped log (a journal
    export, container logs: ``task.wrapper``) is unwrapped: the blocks hold the log lines inside it.
    """
    try:
        if task.wrapper is None:
            yield from whole_lines(_reads(task, stats))
        else:
            unwrap = Unwrapper(task.wrapper, task.fmt.value, stats, task.name).block
            for block in whole_lines(_reads(task, stats)):
                lines = unwrap(block)
                if lines:
                    yield lines
    except STREAM_ERRORS as exc:
        stats.errors.append(f"{task.name}: input ends early ({_describe(exc)}); lines before it were read")


def _reads(task: Task, stats: SourceStats) -> Iterator[bytes]:
    if task.end is None or compression(task.path) is not None:
        f = open_bytes(task.path)
        remaining = -1
    else:
        f = task.path.open("rb")
        f.seek(task.start)
        remaining = task.end - task.start
    with f:
        while remaining != 0:
            data = f.read(BLOCK if remaining < 0 else min(BLOCK, remaining))
            if not data:
                break
            if remaining > 0:  # a byte range of a plain file, read without open_bytes
                remaining -= len(data)
                report_progress(len(data))
            stats.nbytes += len(data)
            yield data


def whole_lines(reads: Iterable[bytes]) -> Iterator[bytes]:
    """The bytes of ``reads`` as blocks of whole lines (each ends with a newline, except perhaps the last).

    A line that does not end within a read is gathered across reads up to ``MAX_LINE`` bytes; the rest of
    a longer one (damage: a run of bytes with no newline) is skipped, so memory stays flat. An exception
    from ``reads`` drops the half line read before it."""
    rest = b""
    overlong = False  # ``rest`` is the first MAX_LINE bytes of a longer line
    for data in reads:
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # no newline in a whole read: keep gathering a very long line, up to MAX_LINE
            if len(rest) < MAX_LINE:
                rest += data[: MAX_LINE - len(rest)]
            else:
                overlong = True
            continue
        if overlong:  # the end of a line cut at MAX_LINE: its rest up to the newline is skipped
            yield rest + b"\n" + data[data.find(b"\n") + 1 : cut]
            overlong = False
        else:
            yield rest + data[:cut]
        rest = data[cut:]
    if rest:
        yield rest


def line_blocks(task: Task, stats: SourceStats) -> Iterator[list[bytes]]:
    """Lists of lines (without newlines) of the task; counts them in ``stats.lines``."""
    for block in byte_blocks(task, stats):
        lines = block.split(b"\n")
        if lines[-1] == b"":
            lines.pop()
        stats.lines += len(lines)
        yield lines


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:120]
