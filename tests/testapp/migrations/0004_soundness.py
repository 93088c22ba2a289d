"""Shapes of data the read-set soundness tests need: a citext column, a table made by SQL
(unmanaged model), views (one nested), and SQL and PL/pgSQL functions reading tables."""

import django.contrib.postgres.fields
from django.db import migrations, models

import tests.testapp.models

SQL = r"""
CREATE TABLE testapp_legacy (id bigserial PRIMARY KEY, name varchar(40) NOT NULL,
                             size integer NOT NULL);
CREATE VIEW testapp_shape_view AS
    SELECT s.id, s.weight, s.handle, l.name FROM testapp_shape s
    LEFT JOIN testapp_legacy l ON l.size = s.id;
CREATE VIEW testapp_heavy_view AS SELECT * FROM testapp_shape_view WHERE weight > 0.5;
CREATE FUNCTION testapp_heavy_count(w float8) RETURNS bigint LANGUAGE sql STABLE
    AS 'SELECT count(*) FROM testapp_shape WHERE weight > w';
CREATE FUNCTION testapp_legacy_rows() RETURNS SETOF testapp_legacy LANGUAGE sql STABLE
    AS 'SELECT * FROM testapp_legacy';
CREATE FUNCTION testapp_nested_count() RETURNS bigint LANGUAGE sql STABLE
    AS 'SELECT testapp_heavy_count(0.5) + (SELECT count(*) FROM testapp_heavy_view)';
CREATE FUNCTION testapp_plpgsql_count() RETURNS bigint LANGUAGE plpgsql STABLE
    AS $$ BEGIN RETURN (SELECT count(*) FROM testapp_legacy); END $$;
"""

# The extension where the server has it; else a plain-text stand-in (the citext test skips).
CITEXT = r"""
DO $$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'citext') THEN
        CREATE EXTENSION IF NOT EXISTS citext;
    ELSIF to_regtype('citext') IS NULL THEN
        CREATE DOMAIN citext AS text;
    END IF;
END $$;
"""

DROP = r"""
DROP FUNCTION IF EXISTS testapp_plpgsql_count(), testapp_nested_count(), testapp_legacy_rows(),
    testapp_heavy_count(float8);
DROP VIEW IF EXISTS testapp_heavy_view, testapp_shape_view;
DROP TABLE IF EXISTS testapp_legacy;
"""


class Migration(migrations.Migration):
    dependencies = [("testapp", "0003_sample")]

    operations = [
        migrations.RunSQL(CITEXT, migrations.RunSQL.noop),
        migrations.CreateModel(
            name="Shape",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("payload", models.JSONField(null=True)),
                ("weight", models.FloatField(default=0.0)),
                ("price", models.DecimalField(decimal_places=4, default=0, max_digits=12)),
                ("at", models.DateTimeField(null=True)),
                ("uid", models.UUIDField(null=True)),
                ("tags", django.contrib.postgres.fields.ArrayField(
                    base_field=models.IntegerField(), default=list, size=None)),
                ("handle", tests.testapp.models.CIText(default="", max_length=40)),
            ],
        ),
        migrations.CreateModel(
            name="Legacy",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("name", models.CharField(max_length=40)),
                ("size", models.IntegerField()),
            ],
            options={"managed": False, "db_table": "testapp_legacy"},
        ),
        migrations.CreateModel(
            name="ShapeView",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("weight", models.FloatField()),
                ("handle", models.CharField(max_length=40)),
                ("name", models.CharField(max_length=40, null=True)),
            ],
            options={"managed": False, "db_table": "testapp_shape_view"},
        ),
        migrations.RunSQL(SQL, DROP),
    ]
