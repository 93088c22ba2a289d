"""Pin the settings that change how reactive_capture() writes values as text (float digits,
date, time zone, interval and bytea styles), so every writer session logs the same exact
image; make existing capture triggers fire under session_replication_role = replica; and
keep the untracked reads live queries made, for ``reactive_functions --check``."""

from django.db import migrations

# Each setting changes the text of some column type inside to_jsonb(row): float8 digits
# (extra_float_digits = 0 rounds to 15 significant digits), timestamptz offsets (TimeZone),
# interval text (IntervalStyle), bytea text (bytea_output). DateStyle is pinned for any value
# that goes through a type's output function rather than JSON's ISO form.
PIN = r"""
ALTER FUNCTION reactive_capture() SET extra_float_digits = 3;
ALTER FUNCTION reactive_capture() SET "DateStyle" = 'ISO, YMD';
ALTER FUNCTION reactive_capture() SET "TimeZone" = 'UTC';
ALTER FUNCTION reactive_capture() SET "IntervalStyle" = 'postgres';
ALTER FUNCTION reactive_capture() SET bytea_output = 'hex';
DO $$
DECLARE
    trig record;
BEGIN
    FOR trig IN
        SELECT t.tgname, t.tgrelid::regclass AS rel FROM pg_trigger t
        WHERE t.tgname LIKE 'reactive\_%' AND NOT t.tgisinternal
    LOOP
        EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', trig.rel, trig.tgname);
    END LOOP;
END
$$;
"""

# Untracked reads seen by live queries (refused or warned), for reactive_functions --check.
OBSERVED = r"""
CREATE TABLE reactive_untrackedread (
    function text NOT NULL,
    tbl text NOT NULL,
    mode text NOT NULL,
    seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (function, tbl)
);
"""

UNPIN = r"""
ALTER FUNCTION reactive_capture() RESET extra_float_digits;
ALTER FUNCTION reactive_capture() RESET "DateStyle";
ALTER FUNCTION reactive_capture() RESET "TimeZone";
ALTER FUNCTION reactive_capture() RESET "IntervalStyle";
ALTER FUNCTION reactive_capture() RESET bytea_output;
"""


class Migration(migrations.Migration):
    dependencies = [("reactive", "0005_capture_hardening")]

    operations = [migrations.RunSQL(PIN, UNPIN),
                  migrations.RunSQL(OBSERVED, "DROP TABLE IF EXISTS reactive_untrackedread;")]
