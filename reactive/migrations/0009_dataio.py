"""Streaming-export positions: an integer cursor (a protocol timestamp) names a snapshot of
the change log, optionally part-way through the changes up to a later snapshot. And the state
of the CLI's snapshot exports and imports, with uploaded parts. Not models: protocol state,
never tracked or shown in the admin."""

from django.db import migrations

CREATE = """
CREATE TABLE reactive_exportposition (
    ts bigint PRIMARY KEY,
    base text NOT NULL,
    upto text,
    after_id bigint NOT NULL DEFAULT 0,
    limits jsonb,  -- a listing's snapshot: each listed table's largest key then (text)
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reactive_exportposition_created_at ON reactive_exportposition (created_at);

CREATE TABLE reactive_snapshotjob (
    id bigserial PRIMARY KEY,
    kind text NOT NULL,
    state jsonb NOT NULL,
    detail text,  -- export: the ZIP path; import: its spec (JSON)
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE reactive_uploadpart (
    upload text NOT NULL,
    part integer NOT NULL,
    data bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (upload, part)
);
"""

DROP = """DROP TABLE IF EXISTS reactive_exportposition;
DROP TABLE IF EXISTS reactive_snapshotjob;
DROP TABLE IF EXISTS reactive_uploadpart;"""


class Migration(migrations.Migration):
    dependencies = [("reactive", "0008_datawork")]

    operations = [migrations.RunSQL(CREATE, DROP)]
