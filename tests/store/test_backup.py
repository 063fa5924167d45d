"""``typoguard db backup`` while the real service runs and writes, ``typoguard db restore`` into a stopped
one: consistency, completeness, refusals (file exists, service running, not a typoguard database, newer
schema), migration of an older backup, PostgreSQL's pg_dump/pg_restore lines."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from typoguard.config import load_config
from typoguard.store import DecisionEvent, DecisionQuery, open_store
from typoguard.store.db import make_engine, write_connection
from typoguard.store.migrations import LATEST, MIGRATIONS
from typoguard.store.schema import schema_version

from .pgcluster import PgCluster
from .policy_load import PolicyLoad
from .serve_process import ServeProcess


def run(exe: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [exe, *args], capture_output=True, text=True, timeout=120, check=False, env=ServeProcess.env()
    )


def connect(db: Path) -> contextlib.closing[sqlite3.Connection]:
    """Read-only, and closed afterwards (sqlite3's own context manager does not close)."""
    return contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True))


def event_ids(db: Path) -> set[str]:
    with connect(db) as conn:
        return {r[0] for r in conn.execute("SELECT event_id FROM tg_decisions")}


def printed_counts(out: str) -> dict[str, int]:
    """The ``table  rows`` lines the commands print."""
    return {m[1]: int(m[2].replace(",", "")) for m in re.finditer(r"^\s+(tg_\w+)\s+([\d,]+)$", out, re.M)}


def config_file(tmp_path: Path, store: str) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    cfg = tmp_path / "typoguard.toml"
    cfg.write_text(f'[protect]\ndomains = ["army.mil"]\n[store]\n{store}\n')
    return cfg


def sqlite_config(tmp_path: Path) -> Path:
    return config_file(tmp_path, f'data_dir = "{tmp_path / "data"}"')


def seed(cfg: Path, n: int, tag: str = "d") -> None:
    store = open_store(load_config(cfg))
    now = time.time()
    store.write_decision_rows(
        [DecisionEvent(now, f"{tag}{i}@arny.mil", "reject", "arny.mil").row(f"{tag}-{i}") for i in range(n)]
    )
    store.close()


def db_of(cfg: Path) -> Path:
    return cfg.parent / "data" / "typoguard.db"


# --------------------------------------------------------------------------- backup
def test_backup_while_the_service_answers_and_writes(typoguard_exe: str, tmp_path: Path) -> None:
    node = ServeProcess(typoguard_exe, tmp_path / "a").start()
    live = tmp_path / "a" / "data" / "typoguard.db"
    backup = tmp_path / "backup.db"
    # Paced below saturation, so that the writer process (SCHED_IDLE) gets the CPU to write all along.
    load = PolicyLoad(node.address, conns=8, rate=1500).start()
    try:
        deadline = time.monotonic() + 30
        while len(event_ids(live)) < 3000:
            assert time.monotonic() < deadline, "the writer did not store 3000 decisions"
            time.sleep(0.1)
        before = event_ids(live)  # stored when the backup starts
        done = run(typoguard_exe, "db", "backup", str(backup), "--config", str(node.config))
        load.wait_for(len(load.answered) + 2000)
        after = event_ids(live)
    finally:
        load.stop()
        assert node.stop() == 0
    assert done.returncode == 0, done.stderr
    assert len(after) > len(before)  # the writer wrote while the backup was taken
    assert not list(tmp_path.glob("backup.db.tmp*")) and not Path(f"{backup}-wal").exists()
    with connect(backup) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)  # one self-contained file
        counts = {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
    saved = event_ids(backup)
    assert before <= saved <= after  # every decision stored at the start, nothing invented
    assert printed_counts(done.stdout) == counts and counts["tg_decisions"] == len(saved)
    assert f"{backup}" in done.stdout and f"schema version {LATEST}" in done.stdout
    assert oct(backup.stat().st_mode & 0o777) == "0o600"  # addresses inside: the owner's only


def test_backup_refuses_to_overwrite_unless_forced(typoguard_exe: str, tmp_path: Path) -> None:
    cfg = sqlite_config(tmp_path)
    seed(cfg, 3)
    target = tmp_path / "b.db"
    target.write_text("an earlier backup")
    done = run(typoguard_exe, "db", "backup", str(target), "--config", str(cfg))
    assert done.returncode == 1
    assert f"{target} exists" in done.stderr and "--force" in done.stderr and "Usage" not in done.stderr
    assert target.read_text() == "an earlier backup"
    done = run(typoguard_exe, "db", "backup", str(target), "--force", "--config", str(cfg))
    assert done.returncode == 0, done.stderr
    assert printed_counts(done.stdout)["tg_decisions"] == 3 and len(event_ids(target)) == 3


def test_backup_refuses_without_a_database_and_onto_the_database_itself(
    typoguard_exe: str, tmp_path: Path
) -> None:
    cfg = sqlite_config(tmp_path)
    done = run(typoguard_exe, "db", "backup", str(tmp_path / "b.db"), "--config", str(cfg))
    assert done.returncode == 1 and "no database" in done.stderr
    seed(cfg, 1)
    done = run(typoguard_exe, "db", "backup", str(db_of(cfg)), "--force", "--config", str(cfg))
    assert done.returncode == 1 and "is the store's database itself" in done.stderr
    assert len(event_ids(db_of(cfg))) == 1


def test_postgresql_gets_the_pg_dump_and_pg_restore_lines_without_the_password(
    typoguard_exe: str, tmp_path: Path
) -> None:
    url = "postgresql+psycopg://tg:s3cret@db1.example.org:5433/typoguard?sslmode=require"
    cfg = config_file(tmp_path, f'url = "{url}"')
    done = run(typoguard_exe, "db", "backup", str(tmp_path / "x.dump"), "--config", str(cfg))
    assert done.returncode == 1 and "s3cret" not in done.stdout + done.stderr
    assert "pg_dump" in done.stderr and "Usage" not in done.stderr
    line = done.stdout.strip()
    assert line.startswith("pg_dump --format=custom")
    assert line.endswith(
        f"--file {tmp_path / 'x.dump'} 'postgresql://tg@db1.example.org:5433/typoguard?sslmode=require'"
    )
    assert not (tmp_path / "x.dump").exists()
    done = run(typoguard_exe, "db", "restore", str(tmp_path / "x.dump"), "--config", str(cfg))
    assert done.returncode == 1 and "s3cret" not in done.stdout + done.stderr
    assert done.stdout.strip() == (
        "pg_restore --clean --if-exists --no-owner"
        f" --dbname 'postgresql://tg@db1.example.org:5433/typoguard?sslmode=require' {tmp_path / 'x.dump'}"
    )


def test_the_printed_postgresql_lines_back_up_and_restore_a_real_store(
    typoguard_exe: str, tmp_path: Path, pg_cluster: PgCluster
) -> None:
    source = config_file(tmp_path / "a", f'url = "{pg_cluster.create_database()}"')
    seed(source, 25)
    dump = tmp_path / "tg.dump"
    line = run(typoguard_exe, "db", "backup", str(dump), "--config", str(source)).stdout
    subprocess.run(shlex.split(line), check=True, timeout=60)
    target = config_file(tmp_path / "b", f'url = "{pg_cluster.create_database()}"')
    line = run(typoguard_exe, "db", "restore", str(dump), "--config", str(target)).stdout
    subprocess.run(shlex.split(line), check=True, timeout=60)
    store = open_store(load_config(target))
    try:
        assert store.count_decisions() == 25 and store.schema_version() == LATEST
    finally:
        store.close()


# --------------------------------------------------------------------------- restore
def test_restore_into_a_stopped_service_and_start_it_again(typoguard_exe: str, tmp_path: Path) -> None:
    a = ServeProcess(typoguard_exe, tmp_path / "a").start()
    backup = tmp_path / "a.backup"
    try:
        for i in range(50):
            a.ask(f"user{i}@arny.mil")
        deadline = time.monotonic() + 15
        while len(event_ids(tmp_path / "a" / "data" / "typoguard.db")) < 50:
            assert time.monotonic() < deadline, "the 50 decisions were not stored"
            time.sleep(0.05)
        assert run(typoguard_exe, "db", "backup", str(backup), "--config", str(a.config)).returncode == 0
    finally:
        assert a.stop() == 0
    saved = event_ids(backup)

    b = ServeProcess(typoguard_exe, tmp_path / "b", node="node-b").start()  # a node with its own history
    try:
        b.ask("own@arny.mil")
    finally:
        assert b.stop() == 0
    db = tmp_path / "b" / "data" / "typoguard.db"
    own = event_ids(db)
    assert len(own) == 1

    done = run(typoguard_exe, "db", "restore", str(backup), "--config", str(b.config))
    assert done.returncode == 0, done.stderr
    assert "restored" in done.stdout and f"{db}.before-restore" in done.stdout
    assert printed_counts(done.stdout)["tg_decisions"] == 50
    assert event_ids(Path(f"{db}.before-restore")) == own  # the replaced database is kept
    assert event_ids(db) == saved
    assert not Path(f"{db}-wal").exists() or Path(f"{db}-wal").stat().st_size == 0

    b.start()
    try:
        assert b.ask("bob@army.ml").startswith("550")  # it answers, and remembers what a did
        rows = b.cli("decisions", "--limit", "1000", "--format", "json")
        assert sum('"user' in line for line in rows.splitlines()) == 50
    finally:
        assert b.stop() == 0
    assert saved < event_ids(db)  # and goes on storing into the restored database


def test_restore_is_refused_while_the_service_runs(typoguard_exe: str, tmp_path: Path) -> None:
    cfg = sqlite_config(tmp_path / "src")
    seed(cfg, 2)
    backup = tmp_path / "two.db"
    assert run(typoguard_exe, "db", "backup", str(backup), "--config", str(cfg)).returncode == 0
    node = ServeProcess(typoguard_exe, tmp_path / "a").start()
    try:
        node.ask("bob@army.ml")
        db = tmp_path / "a" / "data" / "typoguard.db"
        done = run(typoguard_exe, "db", "restore", str(backup), "--config", str(node.config))
        assert done.returncode == 1 and "Usage" not in done.stderr
        assert "in use" in done.stderr and "stop" in done.stderr
        assert node.proc is not None and str(node.proc.pid) in done.stderr  # who holds it
        assert not Path(f"{db}.before-restore").exists()
        assert node.ask("carol@army.mil") == "DUNNO"  # untouched, still answering
    finally:
        assert node.stop() == 0
    assert {"d-0", "d-1"}.isdisjoint(event_ids(db))


def test_restore_is_refused_while_another_process_holds_the_database_open(
    typoguard_exe: str, tmp_path: Path
) -> None:
    """Whatever keeps a connection open (a writer process, `typoguard http`, a sqlite3 shell) counts."""
    cfg = sqlite_config(tmp_path)
    seed(cfg, 2)
    backup = tmp_path / "two.db"
    assert run(typoguard_exe, "db", "backup", str(backup), "--config", str(cfg)).returncode == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1]);"
         " c.execute('select count(*) from tg_decisions').fetchall(); print('open', flush=True);"
         " time.sleep(60)", str(db_of(cfg))],
        stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"open\n"
        done = run(typoguard_exe, "db", "restore", str(backup), "--config", str(cfg))
        assert done.returncode == 1 and "in use" in done.stderr and str(holder.pid) in done.stderr
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    done = run(typoguard_exe, "db", "restore", str(backup), "--config", str(cfg))
    assert done.returncode == 0, done.stderr


def test_restore_checks_what_it_is_given(typoguard_exe: str, tmp_path: Path) -> None:
    cfg = sqlite_config(tmp_path)
    seed(cfg, 1)
    before = event_ids(db_of(cfg))

    def restore(path: Path) -> subprocess.CompletedProcess[str]:
        return run(typoguard_exe, "db", "restore", str(path), "--config", str(cfg))

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database at all" * 100)
    done = restore(junk)
    assert done.returncode == 1 and "not an SQLite database" in done.stderr

    other = tmp_path / "other.db"
    with contextlib.closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE t (x)")
    done = restore(other)
    assert done.returncode == 1 and "not a typoguard database" in done.stderr

    newer = tmp_path / "newer.db"
    assert run(typoguard_exe, "db", "backup", str(newer), "--config", str(cfg)).returncode == 0
    with contextlib.closing(sqlite3.connect(newer)) as conn, conn:
        conn.execute("INSERT INTO tg_schema_version VALUES (?, 'from the future', 0)", (LATEST + 1,))
    done = restore(newer)
    assert done.returncode == 1
    assert f"schema version {LATEST + 1}" in done.stderr and "newer" in done.stderr

    done = restore(tmp_path / "missing.db")
    assert done.returncode in (1, 2) and "missing.db" in done.stderr

    assert event_ids(db_of(cfg)) == before  # none of it touched the store
    assert not Path(f"{db_of(cfg)}.before-restore").exists()
    assert not list(db_of(cfg).parent.glob("*.tmp"))


def test_an_older_backup_is_upgraded_when_restored(typoguard_exe: str, tmp_path: Path) -> None:
    old = tmp_path / "v2.db"
    engine = make_engine(f"sqlite:///{old}")
    with write_connection(engine) as conn:
        schema_version.create(conn)
        for m in MIGRATIONS[:2]:
            m.apply(conn)
            conn.execute(schema_version.insert().values(version=m.version, description="", applied_at=0.0))
        conn.execute(text("DROP TABLE IF EXISTS tg_sessions"))
        conn.execute(
            text(
                "INSERT INTO tg_decisions (event_id, time, node, queue_id, sender, recipient, domain, action,"
                " score, mode) VALUES ('e1', 1.0, 'n', '', '', 'old@arny.mil', 'arny.mil', 'reject', 0.9,"
                " 'enforce')"
            )
        )
    engine.dispose()
    cfg = sqlite_config(tmp_path)
    done = run(typoguard_exe, "db", "restore", str(old), "--config", str(cfg))
    assert done.returncode == 0, done.stderr
    assert f"schema version {LATEST} (upgraded from 2" in done.stdout
    assert not Path(f"{db_of(cfg)}.before-restore").exists()  # there was none to keep
    store = open_store(load_config(cfg), upgrade=False)
    try:
        assert store.schema_version() == LATEST
        assert [r.event.recipient for r in store.decisions(DecisionQuery())] == ["old@arny.mil"]
    finally:
        store.close()


def test_an_earlier_before_restore_file_is_never_overwritten(typoguard_exe: str, tmp_path: Path) -> None:
    cfg = sqlite_config(tmp_path)
    seed(cfg, 1)
    backup = tmp_path / "b.db"
    assert run(typoguard_exe, "db", "backup", str(backup), "--config", str(cfg)).returncode == 0
    kept = Path(f"{db_of(cfg)}.before-restore")
    kept.write_text("the only copy of last week's data")
    done = run(typoguard_exe, "db", "restore", str(backup), "--config", str(cfg))
    assert done.returncode == 1 and str(kept) in done.stderr
    assert kept.read_text() == "the only copy of last week's data"


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_a_restore_run_as_root_leaves_the_database_to_the_service_user(
    typoguard_exe: str, tmp_path: Path
) -> None:
    cfg = sqlite_config(tmp_path)
    seed(cfg, 1)
    backup = tmp_path / "b.db"
    assert run(typoguard_exe, "db", "backup", str(backup), "--config", str(cfg)).returncode == 0
    os.chown(db_of(cfg), 65534, 65534)  # the service's user (nobody here)
    os.chmod(db_of(cfg), 0o640)
    assert run(typoguard_exe, "db", "restore", str(backup), "--config", str(cfg)).returncode == 0
    st = db_of(cfg).stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (65534, 65534, 0o640)
