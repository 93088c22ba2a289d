"""The CLI's snapshot exports and imports as jobs: their state rows (``reactive_snapshotjob``,
what ``_system/cli/exports:getLatest`` and ``queryImport`` read), uploaded parts, and running
them. Both run inside the request that starts them, so the state a CLI then reads is final."""

from __future__ import annotations

import json
import logging
import secrets
import tempfile
from pathlib import Path
from typing import Any

from django.db import connection

from reactive.clock import clock
from reactive.conf import reactive_settings
from reactive.exceptions import BadRequest
from reactive.export import dump, load
from reactive.export.tables import table_named

logger = logging.getLogger(__name__)

IMPORT_MODES = {"requireEmpty": "require_empty", "append": "append", "replace": "replace",
                "replaceAll": "replace"}


def directory() -> Path:
    configured = reactive_settings().EXPORT_DIRECTORY
    path = Path(configured) if configured else Path(tempfile.gettempdir()) / "reactive-exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _create(kind: str, state: dict[str, Any], detail: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO reactive_snapshotjob (kind, state, detail) VALUES (%s, %s, %s) "
                       "RETURNING id", [kind, json.dumps(state), detail])
        return int(cursor.fetchone()[0])


def _update(job_id: int, state: dict[str, Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE reactive_snapshotjob SET state = %s WHERE id = %s",
                       [json.dumps(state), job_id])


def run_export() -> int:
    """Write a snapshot ZIP of every exported table; return its timestamp (``start_ts``)."""
    ts = clock.next()
    path = directory() / f"snapshot_{ts}.zip"
    job = _create("export", {"state": "in_progress"}, str(path))
    try:
        dump.export_zip(path)
    except Exception as exc:
        logger.exception("snapshot export failed job=%d", job)
        _update(job, {"state": "failed", "error_message": str(exc)})
        raise
    _update(job, {"state": "completed", "start_ts": ts, "complete_ts": clock.next()})
    return ts


def export_path(ts: int) -> Path:
    with connection.cursor() as cursor:
        cursor.execute("SELECT detail FROM reactive_snapshotjob WHERE kind = 'export' "
                       "AND state->>'state' = 'completed' AND (state->>'start_ts')::bigint = %s",
                       [ts])
        row = cursor.fetchone()
    if row is None or not Path(row[0]).is_file():
        raise BadRequest(f"No completed snapshot export at {ts}.", code="ExportNotFound",
                         http_status=404)
    return Path(row[0])


def start_upload() -> str:
    return secrets.token_urlsafe(24)


def add_part(token: str, number: int, data: bytes) -> str:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO reactive_uploadpart (upload, part, data) VALUES (%s, %s, %s) "
                       "ON CONFLICT (upload, part) DO UPDATE SET data = EXCLUDED.data",
                       [token, number, data])
    return str(number)


def finish_upload(token: str, parts: list[str], spec: dict[str, Any]) -> int:
    """Record an uploaded import, waiting for confirmation; return its id."""
    fmt, mode, table = spec.get("format"), spec.get("mode", "requireEmpty"), spec.get("tableName")
    if fmt not in ("zip", "jsonLines", "csv"):
        raise BadRequest(f"Import format {fmt!r} is not supported here; use a ZIP, JSONL or "
                         "CSV.", code="BadImport")
    if mode not in IMPORT_MODES:
        raise BadRequest(f"Unknown import mode {mode!r}.", code="BadImport")
    if fmt != "zip":
        if not isinstance(table, str):
            raise BadRequest(f"A {fmt} import needs a table name.", code="BadImport")
        table_named(table)
    numbers = [int(p) for p in parts if str(p).isdigit()]
    if not numbers or len(numbers) != len(parts):
        raise BadRequest("'partTokens' must be the tokens upload_part returned.",
                         code="BadImport")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM reactive_uploadpart WHERE upload = %s "
                       "AND part = ANY(%s)", [token, numbers])
        if cursor.fetchone()[0] != len(numbers):
            raise BadRequest("Some parts of this upload are missing.", code="BadImport")
    state = {"state": "waiting_for_confirmation", "message_to_confirm": "",
             "require_manual_confirmation": False}
    spec = {"format": fmt, "mode": IMPORT_MODES[mode], "table": table, "upload": token,
            "parts": numbers}
    return _create("import", state, json.dumps(spec))


def perform_import(import_id: int) -> int:
    """Run a confirmed import; return rows written (the job records success or failure)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT detail, state->>'state' FROM reactive_snapshotjob "
                       "WHERE kind = 'import' AND id = %s", [import_id])
        row = cursor.fetchone()
    if row is None or row[1] != "waiting_for_confirmation":
        raise BadRequest(f"Import {import_id} is not waiting for confirmation.",
                         code="BadImport")
    spec = json.loads(row[0])
    _update(import_id, {"state": "in_progress", "progress_message": "Importing"})
    try:
        with tempfile.NamedTemporaryFile(suffix=".upload") as tmp:
            _assemble(spec["upload"], spec["parts"], tmp)
            rows = _import_file(Path(tmp.name), spec)
    except Exception as exc:
        _update(import_id, {"state": "failed", "error_message": str(exc)})
        raise
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DELETE FROM reactive_uploadpart WHERE upload = %s", [spec["upload"]])
    _update(import_id, {"state": "completed", "num_rows_written": rows,
                        "checkpoint_messages": []})
    return rows


def _assemble(upload: str, parts: list[int], out: Any) -> None:
    for number in parts:
        with connection.cursor() as cursor:
            cursor.execute("SELECT data FROM reactive_uploadpart WHERE upload = %s AND part = %s",
                           [upload, number])
            out.write(bytes(cursor.fetchone()[0]))
    out.flush()


def _import_file(path: Path, spec: dict[str, Any]) -> int:
    if spec["format"] == "zip":
        return sum(load.import_zip(path, None, spec["mode"]).values())
    read = load.import_csv if spec["format"] == "csv" else load.import_lines
    with path.open(encoding="utf-8-sig", newline="") as lines:
        return read(table_named(spec["table"]), lines, spec["mode"])
