"""Store on SQLite and PostgreSQL: migrations, decision log, correspondents, overrides."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import text

from typoguard.errors import ConfigError, StoreError
from typoguard.store import DecisionEvent, DecisionQuery, Store, open_store, parse_duration
from typoguard.store.migrations import LATEST

from .conftest import store_config


def _rows(n: int, *, start: float = 1_000_000.0, prefix: str = "e", **kw: object) -> list[dict[str, object]]:
    out = []
    for i in range(n):
        fields: dict[str, object] = {
            "recipient": f"bob{i}@partner{i % 3}.org",
            "action": "allow",
            "domain": f"partner{i % 3}.org",
            "sender": "alice@army.mil",
            "queue_id": f"QID{i:05d}",
            "node": "n1",
        }
        fields.update(kw)
        out.append(DecisionEvent(time=start + i, **fields).row(f"{prefix}-{i}"))  # type: ignore[arg-type]
    return out


def test_schema_is_created_and_upgrade_is_idempotent(any_store: Store) -> None:
    assert any_store.schema_version() == LATEST
    assert any_store.upgrade() == []


def test_a_version_1_database_gains_reasons_and_content_and_keeps_its_rows(any_store: Store) -> None:
    # What a node of the previous release left: no reason/content columns, schema version 1.
    with any_store.engine.begin() as conn:
        conn.execute(text("ALTER TABLE tg_decisions DROP COLUMN reason"))
        conn.execute(text("ALTER TABLE tg_decisions DROP COLUMN content"))
        conn.execute(text("DELETE FROM tg_schema_version WHERE version > 1"))
        conn.execute(
            text(
                "INSERT INTO tg_decisions (event_id, time, node, queue_id, sender, recipient, domain, "
                "action, score, mode) VALUES ('old-1', 1000, 'n1', '', 'alice@army.mil', 'bob@army.ml', "
                "'army.ml', 'reject', 0.93, 'enforce')"
            )
        )
    assert any_store.schema_version() == 1
    assert any_store.upgrade() == [2, 3, 4]  # 3: dashboard sessions, 4: watch events (new tables)
    (old,) = any_store.decisions()
    assert (old.event.recipient, old.event.reason, old.event.content) == ("bob@army.ml", None, None)
    # A spool line written before the upgrade (no reason/content keys) is still replayed.
    legacy = {k: v for k, v in _rows(1, prefix="spooled")[0].items() if k not in ("reason", "content")}
    assert any_store.write_decision_rows([legacy], replay=True) == 1
    new = DecisionEvent(2000.0, "carol@arny.mil", "hold", "arny.mil", reason="arny.mil looks like army.mil",
                        content='{"ssn":1}').row("new-1")  # fmt: skip
    assert any_store.write_decision_rows([new]) == 1
    newest = any_store.decisions(DecisionQuery(recipient="carol@arny.mil"))[0].event
    assert (newest.reason, newest.content) == ("arny.mil looks like army.mil", '{"ssn":1}')


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    store = open_store(store_config(tmp_path))
    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO tg_schema_version VALUES (999, 'future', 0)"))
    with pytest.raises(StoreError, match="newer"):
        store.upgrade()
    store.close()


def test_unusable_urls_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        open_store(store_config(tmp_path, "mysql://x/y"))
    with pytest.raises(ConfigError):
        open_store(store_config(tmp_path, "not a url"))


def test_unreachable_database_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError):
        open_store(store_config(tmp_path, "postgresql+psycopg://nobody@127.0.0.1:1/none"))


def test_decisions_are_stored_once_and_queried_newest_first(any_store: Store) -> None:
    rows = _rows(30)
    assert any_store.write_decision_rows(rows) == 30
    assert any_store.write_decision_rows(rows[:10], replay=True) == 0  # same ids: ignored
    assert any_store.count_decisions() == 30
    page = any_store.decisions(DecisionQuery(limit=10))
    assert [r.event_id for r in page] == [f"e-{i}" for i in range(29, 19, -1)]
    nxt = any_store.decisions(DecisionQuery(limit=10, before_seq=page[-1].seq))
    assert [r.event_id for r in nxt] == [f"e-{i}" for i in range(19, 9, -1)]
    assert {r.event.domain for r in any_store.decisions(DecisionQuery(domain="partner1.org", limit=100))} == {
        "partner1.org"
    }
    assert len(any_store.decisions(DecisionQuery(since=1_000_000.0 + 25, limit=100))) == 5
    assert any_store.decisions(DecisionQuery(queue_id="QID00007"))[0].event.recipient == "bob7@partner1.org"


def test_prune_removes_old_decisions_only(any_store: Store) -> None:
    now = time.time()
    any_store.write_decision_rows(_rows(5, start=now - 200 * 86400, prefix="old"))
    any_store.write_decision_rows(_rows(5, start=now - 10, prefix="new"))
    assert any_store.prune(parse_duration("180d")) == 5
    assert {r.event_id[:3] for r in any_store.decisions()} == {"new"}


def test_parse_duration() -> None:
    assert parse_duration("180d") == 180 * 86400
    assert parse_duration("12h") == 12 * 3600
    assert parse_duration("2w") == 14 * 86400
    with pytest.raises(ConfigError):
        parse_duration("soon")


def test_correspondents_learned_from_allowed_mail_only(any_store: Store) -> None:
    any_store.write_decision_rows(_rows(6))
    any_store.write_decision_rows(_rows(4, prefix="held", action="hold"))
    any_store.write_decision_rows(
        _rows(
            50,
            prefix="typo",
            recipient="x@army.ml",
            domain="army.ml",
            kind="suffix_typo",
            intended="army.mil",
        )
    )
    assert any_store.pair_count("army.mil", "partner0.org") == 2
    assert any_store.is_known("army.mil", "partner1.org")
    assert not any_store.is_known("navy.mil", "partner1.org")
    assert any_store.address_count("BOB0@partner0.org") == 1
    info = any_store.correspondent("partner0.org")
    assert info is not None and info.count == 2 and info.first_seen == 1_000_000.0
    assert any_store.correspondent("army.ml") is None  # a suffix typo is never learned, however often


def test_replayed_rows_are_counted_once(any_store: Store) -> None:
    rows = _rows(9)
    any_store.write_decision_rows(rows)
    assert any_store.write_decision_rows(rows, replay=True) == 0
    assert any_store.pair_count("army.mil", "partner0.org") == 3


def test_confirmed_correspondents(any_store: Store) -> None:
    any_store.write_decision_rows(_rows(30))
    any_store.confirm_correspondent("partner0.org", by="admin", reason="contract 42")
    any_store.confirm_correspondent("new-partner.org", by="admin", reason="new")
    assert set(any_store.confirmed_correspondents(min_count=10)) == {"partner0.org"}
    assert set(any_store.confirmed_correspondents(min_count=0)) == {"partner0.org", "new-partner.org"}
    assert any_store.unconfirm_correspondent("partner0.org")
    assert set(any_store.confirmed_correspondents(min_count=10)) == set()


def test_overrides_audit_trail(any_store: Store) -> None:
    a = any_store.add_override("Partner.ORG", "allow", reason="contract", by="alice")
    assert a.domain == "partner.org"
    b = any_store.add_override("partner.org", "block", reason="compromised", by="bob")
    active = any_store.active_overrides()
    assert active["partner.org"].id == b.id and active["partner.org"].action == "block"
    trail = any_store.overrides(include_inactive=True)
    old = next(o for o in trail if o.id == a.id)
    assert old.removed_by == "bob" and old.removed_reason == f"superseded by override #{b.id}"
    assert any_store.override_for("mail.partner.org") == active["partner.org"]
    assert any_store.remove_override(domain="partner.org", by="carol", reason="resolved") == 1
    assert any_store.active_overrides() == {}
    assert len(any_store.overrides(include_inactive=True)) == 2


def test_expired_overrides_are_inactive(any_store: Store) -> None:
    any_store.add_override("old.org", "allow", reason="r", by="x", expires_in=-1)
    any_store.add_override("new.org", "allow", reason="r", by="x", expires_in=3600)
    assert set(any_store.active_overrides()) == {"new.org"}


def test_override_needs_reason_and_valid_domain(sqlite_store: Store) -> None:
    with pytest.raises(ConfigError):
        sqlite_store.add_override("x.org", "allow", reason=" ", by="x")
    with pytest.raises(ConfigError):
        sqlite_store.add_override("not a domain!", "allow", reason="r", by="x")
    with pytest.raises(ConfigError):
        sqlite_store.add_override("x.org", "maybe", reason="r", by="x")
