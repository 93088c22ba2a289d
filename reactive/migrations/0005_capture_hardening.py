"""Harden reactive_capture(): a fixed search_path and the owner's rights, so writers with
another search_path or without rights on the log are still captured; and tables whose primary
key spans several columns (no single column to pair old and new images by) log each image
as its own row, which matches every predicate either image satisfies."""

from django.db import migrations

REPLACE = r"""
CREATE OR REPLACE FUNCTION reactive_capture() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER AS $$
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
        PERFORM pg_notify('reactive', '');
    END IF;
    RETURN NULL;
END
$$;
ALTER FUNCTION reactive_capture() SET search_path FROM CURRENT;
"""

RESTORE = "ALTER FUNCTION reactive_capture() RESET search_path; " \
          "ALTER FUNCTION reactive_capture() SECURITY INVOKER;"


class Migration(migrations.Migration):
    dependencies = [("reactive", "0004_job_commit")]

    operations = [migrations.RunSQL(REPLACE, RESTORE)]
