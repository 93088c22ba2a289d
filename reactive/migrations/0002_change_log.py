"""The change log, the trigger function that fills it, and the persisted protocol clock.

Statement-level triggers (installed per tracked table by reactive/capture.py) call
reactive_capture(<pk column>) with transition tables named reactive_old / reactive_new. Rows are
written in the writer's transaction, so a reader's snapshot sees exactly the committed ones.
"""

from django.db import migrations

CREATE = r"""
CREATE TABLE reactive_change (
    id bigserial PRIMARY KEY,
    txid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    tbl text NOT NULL,
    op char(1) NOT NULL,
    old_row jsonb,
    new_row jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reactive_change_txid ON reactive_change (txid);
CREATE INDEX reactive_change_created_at ON reactive_change (created_at);

CREATE TABLE reactive_state (
    name text PRIMARY KEY,
    int_value bigint,
    time_value timestamptz
);
INSERT INTO reactive_state (name, int_value, time_value) VALUES
    ('clock', 0, NULL),
    ('pruned', NULL, NULL);

CREATE FUNCTION reactive_capture() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    logged bigint := 0;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO reactive_change (tbl, op, new_row)
            SELECT TG_TABLE_NAME, 'I', to_jsonb(n) FROM reactive_new n;
    ELSIF TG_OP = 'UPDATE' THEN
        -- Pair old and new images by primary key (TG_ARGV[0]); a changed key yields two
        -- half-rows, which still match every predicate either image satisfies.
        EXECUTE format(
            'INSERT INTO reactive_change (tbl, op, old_row, new_row) '
            'SELECT $1, ''U'', to_jsonb(o), to_jsonb(n) '
            'FROM reactive_old o FULL JOIN reactive_new n ON o.%1$I = n.%1$I',
            TG_ARGV[0]) USING TG_TABLE_NAME;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO reactive_change (tbl, op, old_row)
            SELECT TG_TABLE_NAME, 'D', to_jsonb(o) FROM reactive_old o;
    ELSE
        INSERT INTO reactive_change (tbl, op) VALUES (TG_TABLE_NAME, 'T');
    END IF;
    GET DIAGNOSTICS logged = ROW_COUNT;
    IF logged > 0 THEN
        -- Identical notifications are merged within a transaction: one wake-up per commit.
        PERFORM pg_notify('reactive', '');
    END IF;
    RETURN NULL;
END
$$;
"""

DROP = """
DROP FUNCTION IF EXISTS reactive_capture() CASCADE;
DROP TABLE IF EXISTS reactive_state;
DROP TABLE IF EXISTS reactive_change;
"""


class Migration(migrations.Migration):
    dependencies = [("reactive", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, DROP)]
