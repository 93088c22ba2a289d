"""Change capture on a real Postgres: triggers, the management command and system check, every
write path, snapshot-exact reads of the log, NOTIFY, and pruning."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator
from decimal import Decimal
from io import StringIO
from typing import Any

import psycopg
import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from django.db import connection, transaction

from reactive.capture import log, triggers
from reactive.capture.matcher import Change
from reactive.checks import check_triggers
from reactive.models import Reaction
from tests.support.changelog import changes_after, dsn, last_change_id
from tests.testapp.models import Attachment, Item, Note, Sample

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]

TESTAPP = ("testapp_item", "testapp_note", "testapp_attachment", "testapp_account")
EVENT_TRIGGERS = {"reactive_ins", "reactive_upd", "reactive_del", "reactive_trunc"}


@pytest.fixture
def other() -> Iterator[psycopg.Connection[Any]]:
    """A second program writing to the same database (autocommit unless it says BEGIN)."""
    with psycopg.connect(dsn(), autocommit=True) as conn:
        yield conn


@pytest.fixture
def reinstall() -> Iterator[None]:
    """Whatever a test removes, the next test finds the triggers installed again."""
    yield
    triggers.install()


def _triggers() -> dict[str, set[str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE NOT t.tgisinternal"
        )
        found: dict[str, set[str]] = {}
        for table, name in cursor.fetchall():
            found.setdefault(table, set()).add(name)
    return found


def _ops(changes: list[Change]) -> list[tuple[str, str]]:
    return [(c.table, c.op) for c in changes]


def _item(**fields: Any) -> Item:
    return Item.objects.create(**{"name": "x", "price": Decimal("1.00"), **fields})


# -- triggers, command, check --------------------------------------------------------------


def test_triggers_exist_on_tracked_tables_and_not_on_internals() -> None:
    # Given a migrated database (pytest-django ran migrate, which fired post_migrate)
    installed = _triggers()

    # Then every tracked table carries the four capture triggers...
    for table in (*TESTAPP, "auth_user", "auth_user_groups", "auth_group"):
        assert installed.get(table, set()) >= EVENT_TRIGGERS, table
    assert {s.table for s in triggers.status()} >= {*TESTAPP, "auth_user"}
    assert all(s.installed for s in triggers.status())
    # ...and Django's bookkeeping and our own tables carry none
    for table in ("django_session", "django_migrations", "django_content_type",
                  "auth_permission", "django_admin_log", "reactive_change", "reactive_state",
                  "reactive_sessionrequest"):
        assert not installed.get(table, set()) & EVENT_TRIGGERS, table


def test_reactive_triggers_check_lists_every_tracked_table_as_ok() -> None:
    out = StringIO()
    call_command("reactive_triggers", "check", stdout=out)
    lines = out.getvalue().splitlines()
    assert "ok       testapp_item" in lines
    assert "ok       auth_user" in lines
    assert not [line for line in lines if line.startswith("MISSING")]
    assert check_triggers(databases=["default"]) == []


def test_migrate_names_a_missing_table_with_the_fix_for_its_kind_and_not_views(
    reinstall: None,
) -> None:
    # Given an unmanaged model's table gone (renamed away; the view over it follows it)
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE testapp_legacy RENAME TO testapp_legacy_away")
    try:
        out = StringIO()
        call_command("migrate", verbosity=0, stdout=out)  # nothing to apply: post_migrate only
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ALTER TABLE testapp_legacy_away RENAME TO testapp_legacy")

    # Then that model is named with what to do for an unmanaged one, and the model over a
    # view (which exists, and gets no triggers) is not named at all
    text = out.getvalue()
    assert ("testapp.Legacy is unmanaged (managed = False) and its table 'testapp_legacy' "
            "does not exist; migrate does not create it.") in text
    assert "reactive_triggers install" in text
    assert "ShapeView" not in text
    assert "makemigrations" not in text


def test_reactive_triggers_remove_is_reported_by_check_and_w001_until_install(
    reinstall: None,
) -> None:
    # Given the triggers removed by the command
    out = StringIO()
    call_command("reactive_triggers", "remove", stdout=out)
    views = [m for m in triggers.tracked_models() if m._meta.db_table.endswith("_view")]
    count = len(triggers.tracked_models()) - len(views)  # a view carries no triggers
    assert out.getvalue().strip() == f"removed triggers from {count} tables"
    assert not _triggers().get("testapp_item", set()) & EVENT_TRIGGERS

    # When writes happen and the tables are checked
    mark = last_change_id()
    _item(name="unseen")
    out = StringIO()
    with pytest.raises(CommandError, match=f"{count} tracked tables lack triggers"):
        call_command("reactive_triggers", "check", stdout=out)
    errors = check_triggers(databases=["default"])

    # Then nothing was captured, and both the command and the system check say so
    assert changes_after(mark, TESTAPP) == []
    assert "MISSING  testapp_item" in out.getvalue().splitlines()
    assert [e.id for e in errors] == ["reactive.W001"]
    assert "testapp_item" in errors[0].msg
    assert "auth_user" in errors[0].msg
    assert "reactive_triggers install" in (errors[0].hint or "")
    assert check_triggers(databases=None) == []  # only with --database
    report = StringIO()
    call_command("check", "--database", "default", stdout=report, stderr=report)
    assert "reactive.W001" in report.getvalue()

    # When they are installed again, everything is back
    out = StringIO()
    call_command("reactive_triggers", "install", stdout=out)
    assert out.getvalue().strip() == f"installed triggers on {count} tables"
    assert check_triggers(databases=["default"]) == []
    mark = last_change_id()
    _item(name="seen")
    assert _ops(changes_after(mark, TESTAPP)) == [("testapp_item", "I")]


def test_install_is_idempotent() -> None:
    triggers.install()
    triggers.install()
    assert _triggers()["testapp_item"] & EVENT_TRIGGERS == EVENT_TRIGGERS
    assert all(s.installed for s in triggers.status())


def test_untracked_models_setting_leaves_a_table_out(reinstall: None, settings: Any) -> None:
    # (reinstall first: its teardown runs after the settings are restored)
    # Given Note declared untracked, when the triggers are installed again
    settings.REACTIVE = {**settings.REACTIVE, "UNTRACKED_MODELS": ["testapp.Note"]}
    triggers.install()

    # Then its stale triggers are gone, and it is neither tracked nor reported missing
    assert not _triggers().get("testapp_note", set()) & EVENT_TRIGGERS
    assert "testapp_note" not in {s.table for s in triggers.status()}
    assert check_triggers(databases=["default"]) == []
    mark = last_change_id()
    Note.objects.create(body="untracked")
    assert changes_after(mark) == []


# -- every write path ----------------------------------------------------------------------


def test_orm_create_save_delete_log_insert_update_delete_images() -> None:
    mark = last_change_id()
    # When an item is created, saved with a new price, and deleted
    item = _item(name="lamp", price=Decimal("9.99"), data={"k": [1, 2]})
    item.price = Decimal("12.50")
    item.save()
    pk = item.pk
    item.delete()

    # Then three rows: I (new image), U (both images), D (old image)
    ins, upd, dele = changes_after(mark, TESTAPP)
    assert (ins.table, ins.op, ins.old) == ("testapp_item", "I", None)
    assert ins.new is not None
    assert ins.new["id"] == pk
    assert ins.new["name"] == "lamp"
    assert ins.new["price"] == Decimal("9.99")
    assert ins.new["data"] == {"k": [1, 2]}
    assert ins.new["owner_id"] is None
    assert datetime.datetime.fromisoformat(ins.new["created_at"]) == item.created_at
    assert ins.new["uid"] == str(item.uid)
    assert upd.op == "U"
    assert upd.old is not None
    assert upd.new is not None
    assert (upd.old["price"], upd.new["price"]) == (Decimal("9.99"), Decimal("12.50"))
    assert upd.old["id"] == upd.new["id"] == pk
    assert (dele.op, dele.new) == ("D", None)
    assert dele.old is not None
    assert (dele.old["id"], dele.old["price"]) == (pk, Decimal("12.50"))


def test_queryset_update_logs_one_paired_row_per_updated_row() -> None:
    a, b, c = (_item(name=n) for n in "abc")
    mark = last_change_id()

    Item.objects.filter(name__in=["a", "b"]).update(name="z")

    changes = changes_after(mark, TESTAPP)
    assert {c.op for c in changes} == {"U"}
    pairs = {(ch.old["id"], ch.old["name"], ch.new["id"], ch.new["name"])  # type: ignore[index]
             for ch in changes}
    assert pairs == {(a.pk, "a", a.pk, "z"), (b.pk, "b", b.pk, "z")}
    assert c.pk not in {ch.old["id"] for ch in changes}  # type: ignore[index]


def test_queryset_update_of_no_rows_logs_nothing() -> None:
    mark = last_change_id()
    assert Item.objects.filter(name="nobody").update(name="z") == 0
    assert changes_after(mark) == []


def test_bulk_create_and_bulk_update_log_every_row() -> None:
    mark = last_change_id()
    notes = Note.objects.bulk_create([Note(body=f"n{i}") for i in range(5)])
    for note in notes:
        note.body = note.body.upper()
    Note.objects.bulk_update(notes, ["body"])

    changes = changes_after(mark, TESTAPP)
    inserts = [c.new["body"] for c in changes if c.op == "I"]  # type: ignore[index]
    updates = sorted((c.old["body"], c.new["body"]) for c in changes  # type: ignore[index]
                     if c.op == "U")
    assert sorted(inserts) == [f"n{i}" for i in range(5)]
    assert updates == [(f"n{i}", f"N{i}") for i in range(5)]


def test_upsert_logs_the_inserted_and_the_updated_rows() -> None:
    # Given an existing account, upserted together with a new one
    from tests.testapp.models import Account

    Account.objects.create(name="old", balance=1)
    mark = last_change_id()
    Account.objects.bulk_create(
        [Account(name="old", balance=2), Account(name="new", balance=3)],
        update_conflicts=True, unique_fields=["name"], update_fields=["balance"],
    )
    changes = changes_after(mark, TESTAPP)
    assert sorted(_ops(changes)) == [("testapp_account", "I"), ("testapp_account", "U")]
    update = next(c for c in changes if c.op == "U")
    assert (update.old["balance"], update.new["balance"]) == (1, 2)  # type: ignore[index]


def test_cascading_delete_and_many_to_many_are_logged() -> None:
    item = _item()
    Attachment.objects.create(item=item, file="a.txt")
    user = User.objects.create_user("ann")
    group = Group.objects.create(name="staff")
    mark = last_change_id()

    user.groups.add(group)
    item.delete()  # Django's collector deletes the attachment first

    changes = changes_after(mark, (*TESTAPP, "auth_user_groups"))
    assert _ops(changes) == [("auth_user_groups", "I"), ("testapp_attachment", "D"),
                             ("testapp_item", "D")]
    assert changes[0].new == {"id": changes[0].new["id"], "user_id": user.pk,  # type: ignore[index]
                              "group_id": group.pk}


def test_raw_sql_through_django_and_another_program_is_logged(
    other: psycopg.Connection[Any],
) -> None:
    mark = last_change_id()
    # When rows are written with raw SQL on Django's connection...
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO testapp_note (body, created_at) VALUES (%s, now())", ["raw"])
        cursor.execute("UPDATE testapp_note SET body = 'raw2' WHERE body = 'raw'")
    # ...and by another program on its own connection, in one transaction
    with other.transaction():
        other.execute("INSERT INTO testapp_note (body, created_at) VALUES ('ext', now())")
        other.execute("DELETE FROM testapp_note WHERE body = 'raw2'")

    changes = changes_after(mark, TESTAPP)
    assert _ops(changes) == [("testapp_note", op) for op in "IUID"]
    assert changes[1].new["body"] == "raw2"  # type: ignore[index]
    assert changes[2].new["body"] == "ext"  # type: ignore[index]
    assert changes[3].old["body"] == "raw2"  # type: ignore[index]


def test_truncate_logs_a_table_level_change_for_every_table_it_empties() -> None:
    # Given a note referenced by a sample (TRUNCATE ... CASCADE empties both)
    note = Note.objects.create(body="gone")
    Sample.objects.create(num=1, label="x", at=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
                          amount=1, note=note)
    mark = last_change_id()
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE testapp_note CASCADE")
    assert sorted(changes_after(mark, ["testapp_note", "testapp_sample"]), key=str) == [
        Change("testapp_note", "T", None, None), Change("testapp_sample", "T", None, None)]


def test_update_changing_the_primary_key_logs_both_images() -> None:
    # Given two notes whose keys are moved by one statement
    a = Note.objects.create(body="a")
    b = Note.objects.create(body="b")
    mark = last_change_id()

    with connection.cursor() as cursor:
        cursor.execute("UPDATE testapp_note SET id = id + 1000 WHERE id IN (%s, %s)", [a.pk, b.pk])

    # Then every old image and every new image is in the log (as unpaired half rows, since
    # pairing is by key)
    changes = changes_after(mark, TESTAPP)
    assert {c.op for c in changes} == {"U"}
    olds = {(c.old["id"], c.old["body"]) for c in changes if c.old}
    news = {(c.new["id"], c.new["body"]) for c in changes if c.new}
    assert olds == {(a.pk, "a"), (b.pk, "b")}
    assert news == {(a.pk + 1000, "a"), (b.pk + 1000, "b")}
    assert all((c.old is None) != (c.new is None) for c in changes)


def test_rolled_back_transaction_leaves_no_change_rows() -> None:
    mark = last_change_id()
    with transaction.atomic():
        _item(name="doomed")
        Note.objects.create(body="doomed")
        transaction.set_rollback(True)
    with transaction.atomic():
        _item(name="kept")
        with transaction.atomic():  # a savepoint rolled back
            Note.objects.create(body="doomed")
            transaction.set_rollback(True)

    changes = changes_after(mark)
    assert _ops(changes) == [("testapp_item", "I")]
    assert changes[0].new["name"] == "kept"  # type: ignore[index]


# -- reading the log by snapshot -----------------------------------------------------------


def _snapshot_read(reader: psycopg.Connection[Any], previous: str | None) -> tuple[str, list[str]]:
    """One Reactor-style round: the new snapshot, and the note bodies committed since
    ``previous`` (read in that same snapshot)."""
    with reader.transaction():
        reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        with reader.cursor() as cursor:
            cursor.execute("SELECT pg_current_snapshot()::text")
            snapshot = cursor.fetchone()[0]  # type: ignore[index]
            changes = [] if previous is None else log.changes_since(cursor, previous)
    bodies = [c.new["body"] for c in changes if c.table == "testapp_note" and c.new]
    return snapshot, bodies


def _note(conn: psycopg.Connection[Any], body: str) -> None:
    conn.execute("INSERT INTO testapp_note (body, created_at) VALUES (%s, now())", [body])


def test_changes_since_returns_exactly_the_commits_between_two_snapshots(
    other: psycopg.Connection[Any],
) -> None:
    with psycopg.connect(dsn(), autocommit=True) as reader:
        # Given a commit before S1
        _note(other, "before")
        s1, _ = _snapshot_read(reader, None)
        # When two transactions commit after S1, one of them rolled back in between
        _note(other, "first")
        with other.transaction():
            _note(other, "aborted")
            raise psycopg.Rollback
        with other.transaction():
            _note(other, "second")
            _note(other, "third")
        # Then the next round sees exactly those, in order; the round after sees nothing
        s2, seen = _snapshot_read(reader, s1)
        assert seen == ["first", "second", "third"]
        _, seen_again = _snapshot_read(reader, s2)
        assert seen_again == []


def test_changes_since_sees_a_writer_that_began_before_the_snapshot_exactly_once(
    other: psycopg.Connection[Any],
) -> None:
    with psycopg.connect(dsn(), autocommit=True) as reader, \
            psycopg.connect(dsn(), autocommit=True) as slow, \
            psycopg.connect(dsn(), autocommit=True) as late:
        # Given a slow writer that wrote before S1 and another that began before S1 but
        # writes after it
        slow.execute("BEGIN")
        _note(slow, "slow")
        late.execute("BEGIN")
        late.execute("SELECT 1")
        s1, _ = _snapshot_read(reader, None)
        _note(late, "late")

        # When a fast writer commits after S1, and the slow ones are still open at S2
        _note(other, "fast")
        s2, seen = _snapshot_read(reader, s1)
        assert seen == ["fast"]

        # When the slow writers commit (late first, then slow: out of start order)
        late.execute("COMMIT")
        slow.execute("COMMIT")
        _note(other, "after")

        # Then the next round sees them (and the later commit), and no round sees them twice
        s3, seen = _snapshot_read(reader, s2)
        assert sorted(seen) == ["after", "late", "slow"]
        s4, seen = _snapshot_read(reader, s3)
        assert seen == []
        _note(other, "last")
        _, seen = _snapshot_read(reader, s4)
        assert seen == ["last"]


def test_changes_since_works_on_a_django_cursor_in_repeatable_read() -> None:
    # Given S1 taken on Django's connection, then a commit
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        cursor.execute("SELECT pg_current_snapshot()::text")
        s1 = cursor.fetchone()[0]
    item = _item(name="django", price=Decimal("3.10"))

    # When the next round reads the log
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        changes = log.changes_since(cursor, s1)

    # Then the change is parsed: op, table, JSON values with exact decimals
    items = [c for c in changes if c.table == "testapp_item"]
    assert [(c.op, c.old) for c in items] == [("I", None)]
    assert items[0].new is not None
    assert items[0].new["id"] == item.pk
    assert items[0].new["price"] == Decimal("3.10")


# -- NOTIFY --------------------------------------------------------------------------------


def _notifies_until_sentinel(
    listener: psycopg.Connection[Any], sender: int, writers: set[int]
) -> list[str]:
    """Payloads NOTIFYed on ``reactive`` by ``writers`` before a sentinel from ``sender``
    (delivery follows commit order, so all earlier commits have been heard by then)."""
    payloads: list[str] = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for notify in listener.notifies(timeout=0.5):
            if notify.payload == "sentinel" and notify.pid == sender:
                return payloads
            if notify.pid in writers:  # not a background process of another test module
                payloads.append(notify.payload)
    raise AssertionError(f"no sentinel within 10 s; got {payloads!r}")


def test_notify_is_sent_once_per_table_a_committing_transaction_wrote(
    other: psycopg.Connection[Any],
) -> None:
    with psycopg.connect(dsn(), autocommit=True) as listener:
        listener.execute(f"LISTEN {triggers.CHANNEL}")
        # When: a transaction with three statements on two tables, a bulk insert, a rolled
        # back transaction, an update of no rows, and three autocommitted writes
        with transaction.atomic():
            item = _item()
            Note.objects.create(body="a")
            Item.objects.filter(pk=item.pk).update(name="y")
        Note.objects.bulk_create([Note(body=str(i)) for i in range(50)])
        with transaction.atomic():
            Note.objects.create(body="rolled back")
            transaction.set_rollback(True)
        Item.objects.filter(name="nobody").update(name="z")
        for body in "xyz":
            _note(other, body)
        other.execute(f"NOTIFY {triggers.CHANNEL}, 'sentinel'")

        # Then one notification per table a committed transaction wrote, naming the table:
        # 2 + 1 + 0 + 0 + 3
        writers = {other.info.backend_pid, connection.connection.info.backend_pid}
        heard = _notifies_until_sentinel(listener, other.info.backend_pid, writers)
        assert sorted(heard[:2]) == ["testapp_item", "testapp_note"]
        assert heard[2:] == ["testapp_note"] * 4


# -- pruning -------------------------------------------------------------------------------


def _short_retention(settings: Any) -> None:
    """A one-minute retention, and every existing row made young, so only rows a test
    backdates are prunable."""
    settings.REACTIVE = {**settings.REACTIVE, "CHANGE_LOG_RETENTION": 60}
    with connection.cursor() as cursor:
        cursor.execute("UPDATE reactive_change SET created_at = now()")


def _backdate(ids: list[int], age: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE reactive_change SET created_at = now() - %s::interval "
                       "WHERE id = ANY(%s)", [age, ids])


def _ids_after(mark: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM reactive_change WHERE id > %s ORDER BY id", [mark])
        return [row[0] for row in cursor.fetchall()]


def _prune() -> int:
    # No reaction holds the log in these tests (tests/reactions/test_log_floor.py covers that).
    Reaction.objects.all().delete()
    with transaction.atomic(), connection.cursor() as cursor:
        return log.prune(cursor)


def _pruned_state() -> tuple[int | None, datetime.datetime | None]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT int_value, time_value FROM reactive_state WHERE name = 'pruned'")
        return cursor.fetchone()  # type: ignore[return-value]


def test_prune_deletes_rows_older_than_the_retention_and_records_the_horizon(
    settings: Any,
) -> None:
    # Given a one-minute retention, every existing row young, and three new rows of which
    # two are backdated past the retention
    _short_retention(settings)
    mark = last_change_id()
    for body in ("old1", "old2", "young"):
        Note.objects.create(body=body)
    old1, old2, young = _ids_after(mark)
    _backdate([old1], "3 hours")
    _backdate([old2], "2 hours")
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(created_at), max(txid)::text::bigint FROM reactive_change "
                       "WHERE id IN (%s, %s)", [old1, old2])
        newest_pruned, newest_txid = cursor.fetchone()

    # When the log is pruned (twice)
    assert _prune() == 2
    assert _prune() == 0

    # Then only the young row is left, and the horizon is the newest pruned row's time
    assert _ids_after(mark) == [young]
    pruned_txid, horizon = _pruned_state()
    assert horizon == newest_pruned
    assert pruned_txid is not None
    assert pruned_txid >= newest_txid


def test_prune_never_moves_the_horizon_back(settings: Any) -> None:
    _short_retention(settings)
    mark = last_change_id()
    Note.objects.create(body="recent-ish")
    _backdate(_ids_after(mark), "10 minutes")
    _prune()
    _, horizon = _pruned_state()
    mark = last_change_id()
    Note.objects.create(body="ancient")
    _backdate(_ids_after(mark), "10 days")

    assert _prune() == 1
    assert _pruned_state()[1] == horizon


def test_prune_skips_while_another_pruner_holds_the_lock(
    settings: Any, other: psycopg.Connection[Any],
) -> None:
    _short_retention(settings)
    mark = last_change_id()
    Note.objects.create(body="old")
    _backdate(_ids_after(mark), "2 hours")
    other.execute("SELECT pg_advisory_lock(hashtext('reactive_prune'))")
    try:
        assert _prune() == 0
        with connection.cursor() as cursor:  # autocommit, as the Reactor calls it
            assert log.prune(cursor) == 0
        assert len(_ids_after(mark)) == 1
    finally:
        other.execute("SELECT pg_advisory_unlock(hashtext('reactive_prune'))")
    with connection.cursor() as cursor:
        assert log.prune(cursor) == 1


def test_pruned_txid_detects_a_long_transaction_that_the_time_horizon_misses(
    settings: Any, other: psycopg.Connection[Any],
) -> None:
    # Given a writer that began long ago (its created_at is its start) and is still open at a
    # Reactor's snapshot S_prev
    _short_retention(settings)
    mark = last_change_id()
    other.execute("BEGIN")
    _note(other, "long")
    with psycopg.connect(dsn(), autocommit=True) as reader:
        with reader.transaction():
            reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            s_prev, s_prev_time = reader.execute(
                "SELECT pg_current_snapshot()::text, now()").fetchone()  # type: ignore[misc]
        other.execute("UPDATE reactive_change SET created_at = now() - interval '2 hours' "
                      "WHERE txid = pg_current_xact_id()")
        other.execute("COMMIT")

        # When the log is pruned before the Reactor's next round
        assert _prune() == 1
        assert changes_after(mark, ["testapp_note"]) == []

        # Then the time horizon is older than S_prev (a time test would miss the hole), but the
        # pruned txid is not below S_prev's xmin (the txid test re-runs everything)
        pruned_txid, horizon = _pruned_state()
        assert horizon is not None
        assert horizon < s_prev_time
        (missed,) = reader.execute(
            "SELECT %s >= pg_snapshot_xmin(%s::pg_snapshot)::text::bigint",
            [pruned_txid, s_prev]).fetchone()  # type: ignore[misc]
        assert missed is True


@pytest.mark.django_db(transaction=True)
def test_writers_with_another_search_path_are_still_captured() -> None:
    # Given a program whose search_path does not include the log's schema
    from tests.support.changelog import dsn

    with psycopg.connect(dsn(), autocommit=True) as other:
        other.execute("CREATE SCHEMA IF NOT EXISTS elsewhere")
        other.execute("SET search_path TO elsewhere")
        # When it writes to a tracked table (schema-qualified)
        other.execute("INSERT INTO public.testapp_account (name, balance) VALUES ('sp', 1)")
    # Then the write is captured
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM reactive_change WHERE tbl = 'testapp_account' "
                       "AND new_row->>'name' = 'sp'")
        assert cursor.fetchone()[0] == 1
