"""NOTIFY names the table written: the payload of each notification on channel ``reactive`` is
the table's name (one notification per table a transaction wrote; identical ones merge), so a
server process whose live queries read none of those tables can skip the round. The function
is otherwise 0005's, with 0006's pinned settings restated (CREATE OR REPLACE resets them)."""

from django.db import migrations

BODY = r"""
CREATE OR REPLACE FUNCTION reactive_capture() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER
SET search_path FROM CURRENT
SET extra_float_digits = 3
SET "DateStyle" = 'ISO, YMD'
SET "TimeZone" = 'UTC'
SET "IntervalStyle" = 'postgres'
SET bytea_output = 'hex'
AS $$
DECLARE
    logged bigint := 0;
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO reactive_change (tbl, op, new_row)
            SELECT TG_TABLE_NAME, 'I', to_jsonb(n) FROM reactive_new n;
    ELSIF TG_OP = 'UPDATE' AND coalesce(TG_ARGV[0], '') <> '' THEN
        EXECUTE format(
            'INSERT INTO reactive_change (tbl, op, old_row, new_row) '
            'SELECT $1, ''U'', to_jsonb(o), to_jsonb(n) '
            'FROM reactive_old o FULL JOIN reactive_new n ON o.%1$I = n.%1$I',
            TG_ARGV[0]) USING TG_TABLE_NAME;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO reactive_change (tbl, op, old_row, new_row)
            SELECT TG_TABLE_NAME, 'U', to_jsonb(o), NULL FROM reactive_old o
            UNION ALL
            SELECT TG_TABLE_NAME, 'U', NULL, to_jsonb(n) FROM reactive_new n;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO reactive_change (tbl, op, old_row)
            SELECT TG_TABLE_NAME, 'D', to_jsonb(o) FROM reactive_old o;
    ELSE
        INSERT INTO reactive_change (tbl, op) VALUES (TG_TABLE_NAME, 'T');
    END IF;
    GET DIAGNOSTICS logged = ROW_COUNT;
    IF logged > 0 THEN
        PERFORM pg_notify('reactive', %s);
    END IF;
    RETURN NULL;
END
$$;
"""

# Readers treat an empty payload as "any table", so going back is safe while servers run.
FORWARD = BODY.replace("%s", "TG_TABLE_NAME")
BACKWARD = BODY.replace("%s", "''")


class Migration(migrations.Migration):
    dependencies = [("reactive", "0009_dataio")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
