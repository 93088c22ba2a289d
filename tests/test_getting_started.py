"""docs/getting-started.md, followed from an empty directory: every file it shows is written and
every command it shows is run, in order, with this venv's Python, first on the embedded stack
that ``reactive_dev`` starts and then on "your own" PostgreSQL and Redis (the suite's servers)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from reactive.embedded.ports import free_port
from tests.support.fresh import new_database
from tests.support.guide import GuideRunner
from tests.support.servers import ROOT, scratch_dir

GUIDE = ROOT / "docs" / "getting-started.md"
pytestmark = pytest.mark.timeout(420)


@pytest.fixture
def runner(postgres_url: str, redis_url: str) -> Iterator[GuideRunner]:
    port = free_port()  # the guide's 8000 may be taken on a shared machine
    home = scratch_dir("reactive-guide-")  # the embedded Postgres's user must traverse it
    guide = GuideRunner(
        home / "project",
        replace={
            "127.0.0.1:8000": f"127.0.0.1:{port}",
            # Part two's "your own" servers are the suite's (a database of its own, and a
            # Redis database number no other test uses)
            "postgresql://app:secret@db.internal:5432/app": new_database(postgres_url),
            "redis://cache.internal:6379/0": f"{redis_url.rsplit('/', 1)[0]}/4",
        },
        background={"python manage.py reactive_dev": "dev stack ready"},
        skip={"pip install": "the package is installed in this venv already (editable)"},
    )
    guide.replace["python manage.py reactive_dev"] = f"python manage.py reactive_dev --port {port}"
    guide.root.mkdir()
    yield guide
    guide.stop()
    shutil.rmtree(home, ignore_errors=True)


def test_the_getting_started_guide_works_as_written(runner: GuideRunner) -> None:
    try:
        runner.follow(GUIDE, stop_at="Run the example")  # `make run` is the browser tests' part
    except BaseException:
        print("\n".join(runner.log))  # shown by pytest on failure
        raise
    # Both parts ran their dev stack and the live subscription
    ran = "\n".join(runner.log)
    print(ran)  # with each command's time: shown with -s or -rP
    assert ran.count("reactive_dev --port") == 2 and ran.count("$ python watch.py") == 2
    assert "skipped: pip install" in ran
