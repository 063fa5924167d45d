"""What every ``typoguard`` command shares: the exit codes, usage errors and how a ``TypoguardError`` is told,
config loading, and the options several commands take (``--config``, ``--protect``, ``--protect-file``,
``--format text|json``).

``typoguard check`` imports this at every start, so it imports only click and the config; the Guard is
imported when a command builds one.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, NoReturn, TypeVar

import click
import orjson

from typoguard.config import Config, load_config
from typoguard.errors import ConfigError, TypoguardError

if TYPE_CHECKING:
    from typoguard.guard import Guard

# The exit codes other tools script against; every command keeps to them.
EXIT_OK: Final = 0  # done, nothing flagged
EXIT_FLAGGED: Final = 1  # check/audit/exposure: something flagged or invalid
EXIT_FAILED: Final = 1  # the operation failed: database down, a Postfix tool failed, nothing matched
EXIT_USAGE: Final = 2  # usage or configuration error
EXIT_DNS_UNUSABLE: Final = 3  # exposure/export: the DNS is unusable, nothing scanned or written (ADR 0019)
EXIT_INCOMPLETE: Final = 4  # exposure/export: look-ups failed, the results are incomplete (ADR 0019)


class _Process:
    """Whether this process is the ``typoguard`` command's own (``cli.run``, the console script and
    ``python -m typoguard``), not a program that calls the commands (tests, ``CliRunner``)."""

    owned = False


def own_process() -> None:
    _Process.owned = True


def discard_stdout() -> None:
    """What is still buffered for standard output dropped, so that ending does not try to write it again
    (Python would print "Exception ignored ..." at exit)."""
    with contextlib.suppress(OSError, ValueError, io.UnsupportedOperation):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def replace_file(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all: a file next to it, flushed to disk, renamed
    over it (the previous file's permissions kept, else those of a new file). What reads the file (postmap,
    rspamd reloading a changed map, a browser) never sees half of it, even when the disk fills up. A path
    that is not a regular file (``/dev/stdout``, a pipe), or an existing file in a directory where no file
    may be created, is written in place. Raises ``OSError``."""
    try:
        old = os.stat(path)
    except FileNotFoundError:
        old = None
    if old is not None and not stat.S_ISREG(old.st_mode):
        path.write_text(text, "utf-8")
        return
    if old is not None:
        mode = stat.S_IMODE(old.st_mode)
    else:
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except PermissionError:
        if old is None:
            raise
        path.write_text(text, "utf-8")  # may write the file, not create one beside it: in place, as before
        return
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def stdin_is_terminal() -> bool:
    """Whether standard input is a terminal (a '-' input would wait for typing); False when it is closed
    (``<&-``, a supervisor without one), where ``sys.stdin`` is None: reading it then fails loudly."""
    stdin = sys.stdin
    try:
        return stdin is not None and stdin.isatty()
    except (OSError, ValueError):
        return False


def exit_now(code: int) -> NoReturn:
    """End the command with exit status ``code``. In the command's own process: standard output and error
    flushed, then ``os._exit``, skipping the interpreter's tear-down, which frees the heap object by object:
    an audit of a 200 MB log ends holding ~2 million objects, ~0.1 s of a ~3.7 s run. Elsewhere, or when a
    flush fails (a full disk, a closed pipe: reported as Python reports it), ``sys.exit``."""
    if _Process.owned:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        else:
            os._exit(code)
    sys.exit(code)


F = TypeVar("F", bound=Callable[..., Any])


class UsageFailure(click.UsageError):
    """A usage or configuration error: the usage line, ``Error: <message>``, exit 2."""

    exit_code = EXIT_USAGE


class OperationFailed(click.ClickException):
    """The operation failed: ``Error: <message>``, exit 1."""

    exit_code = EXIT_FAILED


def translate_errors(f: F) -> F:
    """A command whose ``ConfigError`` is a usage failure (exit 2) and any other ``TypoguardError`` a
    failed operation (exit 1), both one line on stderr (``reads_config`` applies it)."""

    @wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except ConfigError as exc:
            raise UsageFailure(str(exc)) from None
        except TypoguardError as exc:
            raise OperationFailed(str(exc)) from None

    return wrapper  # type: ignore[return-value]


def read_config(config_path: Path | None) -> Config:
    """The config a command runs with (the defaults without ``--config``); a bad one exits 2."""
    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise UsageFailure(str(exc)) from None


def guard_from_options(
    config_path: Path | None, protect: Iterable[str], protect_files: Iterable[Path]
) -> Guard:
    """The Guard of ``--config``, ``--protect`` and ``--protect-file`` together; exit 2 if it cannot be built
    or protects nothing."""
    from typoguard.guard import Guard

    config = read_config(config_path)
    try:
        guard = Guard.from_config(config, extra_domains=protect, extra_files=protect_files)
    except TypoguardError as exc:
        raise UsageFailure(str(exc)) from None
    if not guard.index.protected:
        from typoguard.config import protect_sources

        read = [protect_sources(config)]  # which sources were read (issue 17)
        read += [f"--protect-file {path} has no domain" for path in protect_files]
        raise UsageFailure(
            "nothing to protect: give --config FILE, --protect DOMAIN or --protect-file FILE"
            f" ({'; '.join(read)})"
        )
    return guard


# --------------------------------------------------------------------------- options
CONFIG_FILE: Final = click.Path(path_type=Path, dir_okay=False)


def config_option(f: F) -> F:
    """``--config FILE`` (optional: without it, the defaults and ``TYPOGUARD_*``)."""
    return click.option("--config", "config_path", type=CONFIG_FILE, help="TOML config.")(f)


def reads_config(f: F) -> F:
    """``--config FILE`` for a command that works on what the config names (the store, a server, the
    queue), with the error contract of such commands (``translate_errors``)."""
    return config_option(translate_errors(f))


def protect_options(f: F) -> F:
    """``--config``, ``--protect`` and ``--protect-file``: what a command that checks names protects (read
    with ``guard_from_options``)."""
    f = click.option(
        "--protect-file",
        "protect_files",
        multiple=True,
        type=click.Path(path_type=Path, dir_okay=False),
        help="File of domains to protect, one per line (repeatable).",
    )(f)
    f = click.option("--protect", multiple=True, metavar="DOMAIN", help="A domain to protect (repeatable).")(
        f
    )
    return config_option(f)


def format_option(f: F) -> F:
    """``--format text|json`` (text by default)."""
    return click.option(
        "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
    )(f)


# --------------------------------------------------------------------------- output
def when(t: float | None) -> str:
    """A timestamp as listings show it (``2026-11-27 00:27:31Z``), ``-`` for none."""
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def json_lines(objs: Iterable[dict[str, Any]]) -> None:
    """One JSON object a line on standard output."""
    out = sys.stdout
    for o in objs:
        out.write(orjson.dumps(o).decode() + "\n")
    out.flush()
