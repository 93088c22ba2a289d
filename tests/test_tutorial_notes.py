"""docs/tutorial/index.md part 13, followed on a copy of the example project: schema-free notes
written and pinned with ``reactive_run``, the shape shown, ``reactive_schema notes
--migration notes``, the printed model pasted, ``DOCUMENTS_MODELS`` set, ``migrate``, and the
same functions working against the model. Every command as written, with this venv's Python,
on a database of its own."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator

import psycopg
import pytest

from tests.support.fresh import clean_env, new_database
from tests.support.guide import GuideRunner
from tests.support.servers import ROOT, scratch_dir

TUTORIAL = ROOT / "docs" / "tutorial" / "index.md"
PART = "13. Notes without a model, then a model"
pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def runner(postgres_url: str, redis_url: str) -> Iterator[GuideRunner]:
    home = scratch_dir("reactive-tutorial-")
    project = home / "example_project"
    shutil.copytree(ROOT / "example_project", project, ignore=shutil.ignore_patterns(
        "node_modules", ".reactive", "__pycache__", "frontend"))
    database = new_database(postgres_url)
    env = {"DATABASE_URL": database, "REDIS_URL": f"{redis_url.rsplit('/', 1)[0]}/5",
           "MEDIA_ROOT": str(home / "media")}
    # The tutorial starts from the example as `make run` leaves it: migrated, demo users in
    subprocess.run([sys.executable, "manage.py", "migrate", "--no-input"], cwd=project,
                   env=clean_env(**env), check=True, capture_output=True, timeout=180)
    yield GuideRunner(project, env=env)
    shutil.rmtree(home, ignore_errors=True)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database.rsplit("/", 1)[1]}" WITH (FORCE)')


def test_the_tutorials_move_from_documents_to_a_model_works_as_written(
        runner: GuideRunner) -> None:
    try:
        runner.follow(TUTORIAL, start_at=PART)
    except BaseException:
        print("\n".join(runner.log))  # shown by pytest on failure
        raise
    ran = "\n".join(runner.log)
    # It ran the whole part: the migration was written and applied, the model holds the notes
    assert "reactive_schema notes --migration notes" in ran
    assert (runner.root / "notes" / "migrations" / "0001_move_notes.py").exists()
    assert "Applying notes.0001_move_notes... OK" in ran
    assert "3 notes in the model" in ran
    # And the written migration matches the pasted model: nothing left for makemigrations
    check = subprocess.run([sys.executable, "manage.py", "makemigrations", "notes", "--check",
                            "--dry-run"], cwd=runner.root, env=runner.env, capture_output=True,
                           text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
