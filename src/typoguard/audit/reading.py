"""Reading a line-oriented log task as blocks of lines, in constant memory, surviving damaged streams."""

from __future__ import annotations

from collections.abc import Iterator

from typoguard.audit.model import SourceStats
from typoguard.audit.sources import STREAM_ERRORS, Task, compression, open_bytes

BLOCK = 4 << 20  # bytes read at a time: large enough to amortise the split, small enough to stay flat


def line_blocks(task: Task, stats: SourceStats) -> Iterator[list[bytes]]:
    """Lists of lines (without newlines) of the task's range; a truncated or corrupt compressed stream ends
    the input early and is recorded in ``stats.errors``; what was read before the damage is kept."""
    rest = b""
    try:
        if task.end is None or compression(task.path) is not None:
            f = open_bytes(task.path)
            remaining = -1
        else:
            f = task.path.open("rb")
            f.seek(task.start)
            remaining = task.end - task.start
        with f:
            while remaining != 0:
                want = BLOCK if remaining < 0 else min(BLOCK, remaining)
                data = f.read(want)
                if not data:
                    break
                if remaining > 0:
                    remaining -= len(data)
                stats.nbytes += len(data)
                lines = (rest + data).split(b"\n")
                rest = lines.pop()
                stats.lines += len(lines)
                yield lines
    except STREAM_ERRORS as exc:
        stats.errors.append(f"{task.name}: input ends early ({_describe(exc)}); lines before it were read")
        rest = b""  # a half line at the point of damage is not worth parsing
    if rest:
        stats.lines += 1
        yield [rest]


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text[:120]
