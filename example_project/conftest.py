"""The example's tests run on the suite's private Postgres (fixtures from tests/conftest.py):
`pytest example_project --ds=example_project.settings` (make test does)."""

from tests.conftest import django_db_modify_db_settings, postgres_url  # noqa: F401
