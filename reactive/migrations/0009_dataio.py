"""Streaming-export positions: an integer cursor (a protocol timestamp) names a snapshot of
the change log, optionally part-way through the changes up to a later snapshot. Not a model:
positions are protocol state, never tracked or shown in the admin."""

from django.db import migrations

CREATE = """
CREATE TABLE reactive_exportposition (
    ts bigint PRIMARY KEY,
    base text NOT NULL,
    upto text,
    after_id bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reactive_exportposition_created_at ON reactive_exportposition (created_at);
"""

DROP = "DROP TABLE IF EXISTS reactive_exportposition;"


class Migration(migrations.Migration):
    dependencies = [("reactive", "0005_capture_hardening")]

    operations = [migrations.RunSQL(CREATE, DROP)]
