"""System checks (``reactive.E001``...): settings, database backend, driver and reachability,
file storage."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.db import connections

from reactive.conf import validate
from reactive.probe import DOWN_HINT, database_problem
from reactive.project_checks import settings_file

POSTGRESQL = "django.db.backends.postgresql"
# Django's, and service_url's subclass of it (it only reports a stopped server sooner)
POSTGRESQL_ENGINES = frozenset({POSTGRESQL, "reactive.embedded.backend"})


@register(Tags.compatibility)
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """reactive.E001: every problem in ``settings.REACTIVE``."""
    return [
        Error(problem, hint="See docs/reference/settings.md.", id="reactive.E001")
        for problem in validate(getattr(settings, "REACTIVE", None))
    ]


@register(Tags.database, Tags.compatibility)
def check_database(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """reactive.E002: the default database is PostgreSQL; reactive.E003: through psycopg 3."""
    engine = _engine()
    if engine not in POSTGRESQL_ENGINES:
        return [
            Error(
                f"django-reactivity needs PostgreSQL; DATABASES['default'] uses {engine!r}.",
                hint=f"In {settings_file()} point DATABASES['default'] at PostgreSQL. For "
                "development: DATABASES = {'default': service_url.database(BASE_DIR / "
                "'.reactive')} (from reactive.embedded import service_url) and run python "
                "manage.py reactive_dev; or set ENGINE 'django.db.backends.postgresql' with your "
                "server's NAME, USER, HOST and PORT. See docs/getting-started.md.",
                id="reactive.E002",
            )
        ]
    driver = getattr(connections["default"], "Database", None)
    if getattr(driver, "__name__", "") != "psycopg":
        return [
            Error(
                "django-reactivity needs the psycopg 3 driver; psycopg2 is in use.",
                hint="pip install 'psycopg[binary,pool]' and uninstall psycopg2.",
                id="reactive.E003",
            )
        ]
    return []


@register(Tags.database)
def check_triggers(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """reactive.E050: the database does not answer; reactive.W001: existing tracked tables lack
    change-capture triggers. Both only with database checks (``--database``, ``migrate``).

    W001 is a warning, not an error: ``migrate`` runs database checks before it creates the
    change log and new tables, and installs the triggers itself afterwards.
    """
    from reactive.capture import log, triggers

    if not databases or "default" not in databases or _engine() not in POSTGRESQL_ENGINES:
        return []  # E002 reports another engine; SQLite has no to_regclass()
    problem = database_problem("default")
    if problem is not None:
        return [Error(problem, hint=DOWN_HINT, id="reactive.E050")]
    if not log.log_exists():
        return []
    missing = [s.table for s in triggers.status() if not s.installed]
    if not missing:
        return []
    return [
        Warning(
            f"Change capture triggers are missing on {', '.join(sorted(missing))}; writes to "
            "these tables will not reach live queries.",
            hint="Run manage.py reactive_triggers install (migrate does it too).",
            id="reactive.W001",
        )
    ]


def _engine() -> str:
    return str(settings.DATABASES.get("default", {}).get("ENGINE", ""))


def _database_answers(databases: Any) -> bool:
    """Whether database checks were asked for and the default database is a PostgreSQL that
    answers. Other engines are E002's to report (SQLite has no ``to_regclass()``), a database
    that does not answer E050's (in ``check_triggers``)."""
    if not databases or "default" not in databases or _engine() not in POSTGRESQL_ENGINES:
        return False
    return database_problem("default") is None


@register(Tags.compatibility)
def check_reactions_and_migrations(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """reactive.E020: an ``@on_change`` model is not tracked; reactive.E021: a ``@migration``
    model is not tracked; reactive.E022: an ``@on_change`` ``where=`` reaches another table."""
    from reactive.capture.triggers import tracked_models
    from reactive.datamigrations.definitions import registry as migrations
    from reactive.exceptions import DefinitionError
    from reactive.reactions.definitions import registry as reactions
    from reactive.reactions.log import where_sql

    tracked = set(tracked_models())
    problems: list[CheckMessage] = []
    for reaction in reactions:
        if reaction.model not in tracked:
            problems.append(Error(
                f"Reaction {reaction.name!r} watches {reaction.model._meta.label}, whose table "
                "is not tracked by change capture, so it would never fire.",
                hint="Track the model (REACTIVE['TRACKED_APPS'] / ['UNTRACKED_MODELS']).",
                id="reactive.E020"))
        try:
            where_sql(reaction)
        except DefinitionError as exc:
            problems.append(Error(str(exc), id="reactive.E022"))
    problems.extend(
        Error(f"Data migration {m.name!r} runs over {m.model._meta.label}, whose table is not "
              "tracked by change capture; its final pass could not find rows written behind "
              "its cursor.", hint="Track the model (REACTIVE['TRACKED_APPS'] / "
              "['UNTRACKED_MODELS']).", id="reactive.E021")
        for m in migrations if m.model not in tracked
    )
    return problems


# pg_class.relkind letters of relations a tracked model may name, and what to call them.
_RELATION_KINDS = {"v": "a view", "m": "a materialized view", "f": "a foreign table"}


@register(Tags.database)
def check_untrackable_tables(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """reactive.W010: a tracked model names a relation that cannot carry capture triggers.

    A view is fine (read sets resolve it to its base tables), so it is not reported; a
    materialized view or a foreign table changes without any trigger firing, so live queries
    reading it are refused as untracked reads (``UNTRACKED_READS``).
    """
    from reactive.capture.catalog import relkinds
    from reactive.capture.triggers import tracked_models

    if not _database_answers(databases):
        return []
    models = {m._meta.db_table: m for m in tracked_models()}
    with connections["default"].cursor() as cursor:
        kinds = relkinds(cursor, models)
    return [
        Warning(
            f"{models[table]._meta.label} uses {table!r}, which is "
            f"{_RELATION_KINDS[kind]}: it cannot carry change-capture triggers, so live "
            "queries that read it are refused as untracked reads.",
            hint="Point the model at an ordinary table (or a view over tracked tables), add "
            "it to REACTIVE['UNTRACKED_MODELS'], or opt in with @query(untracked_reads="
            "'warn') where a stale result is acceptable.",
            id="reactive.W010",
        )
        for table, kind in sorted(kinds.items()) if kind in ("m", "f")
    ]


@register(Tags.database)
def check_reaction_health(
    app_configs: Any = None, databases: Any = None, **kwargs: Any
) -> list[CheckMessage]:
    """reactive.W020: a reaction is parked (failed); reactive.W021: a reaction fell behind the
    change log (``--database default``)."""
    from reactive.capture import log
    from reactive.models import Reaction, ReactionState

    if not _database_answers(databases) or not log.log_exists():
        return []
    messages: list[CheckMessage] = []
    for name, state in Reaction.objects.exclude(state=ReactionState.ACTIVE).values_list(
        "name", "state"
    ):
        if state == ReactionState.FAILED:
            messages.append(Warning(
                f"Reaction {name!r} is parked after failing on every attempt.",
                hint=f"See manage.py reactive_triggers reactions; then retry {name} or "
                f"skip {name}.",
                id="reactive.W020"))
        else:
            messages.append(Warning(
                f"Reaction {name!r} fell behind: the change log was pruned past its cursor "
                "(REACTION_MAX_LAG), so it stopped.",
                hint=f"manage.py reactive_triggers skip {name} resumes it from the present.",
                id="reactive.W021"))
    return messages


@register(Tags.compatibility)
def check_storage(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """reactive.E030: ``STORAGE_BACKEND`` names no entry of ``settings.STORAGES``;
    reactive.W030: cross-origin clients are allowed but storage URLs are path-only."""
    from reactive.conf import reactive_settings

    if validate(getattr(settings, "REACTIVE", None)):
        return []  # reactive.E001 reports it
    conf = reactive_settings()
    messages: list[CheckMessage] = []
    if conf.STORAGE_BACKEND not in settings.STORAGES:
        messages.append(Error(
            f"REACTIVE['STORAGE_BACKEND'] is {conf.STORAGE_BACKEND!r}, which settings.STORAGES "
            f"does not define (it has {', '.join(sorted(settings.STORAGES)) or 'nothing'}).",
            hint="Name an entry of settings.STORAGES or add one (docs/guides/file-storage.md).",
            id="reactive.E030",
        ))
    if conf.CORS_ALLOWED_ORIGINS and conf.STORAGE_URL_BASE is None:
        messages.append(Warning(
            "REACTIVE['CORS_ALLOWED_ORIGINS'] lets other origins call the API, but "
            "REACTIVE['STORAGE_URL_BASE'] is unset, so upload and file URLs are paths that "
            "those pages would resolve against their own origin.",
            hint="Set REACTIVE['STORAGE_URL_BASE'] to this server's public origin.",
            id="reactive.W030",
        ))
    return messages


@register(Tags.compatibility)
def check_export(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """reactive.E040: ``EXPORT_DIRECTORY`` is set but not a writable directory;
    reactive.W040: ``METRICS_ENABLED`` without an ``ADMIN_KEY`` (only staff can scrape)."""
    import os

    from reactive.conf import reactive_settings

    if validate(getattr(settings, "REACTIVE", None)):
        return []  # reactive.E001 reports it
    conf = reactive_settings()
    messages: list[CheckMessage] = []
    directory = conf.EXPORT_DIRECTORY
    if directory and not (os.path.isdir(directory) and os.access(directory, os.W_OK)):
        messages.append(Error(
            f"REACTIVE['EXPORT_DIRECTORY'] is {directory!r}, which is not a writable directory.",
            hint="Create it, make it writable by the server, or unset it (docs/guides/export.md).",
            id="reactive.E040",
        ))
    if conf.METRICS_ENABLED and not conf.ADMIN_KEY:
        messages.append(Warning(
            "REACTIVE['METRICS_ENABLED'] is on but REACTIVE['ADMIN_KEY'] is unset: only staff "
            "sessions can read /api/metrics, so a Prometheus scraper cannot.",
            hint="Set REACTIVE['ADMIN_KEY'] and give the scraper 'Authorization: Convex <key>'.",
            id="reactive.W040",
        ))
    return messages

@register(Tags.models)
def check_search_indexes(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """reactive.W070: a SearchVectorField without a GIN index; reactive.W071: a pgvector field
    without an HNSW or IVFFlat index. Live searches still work, by scanning every row."""
    from django.apps import apps

    return search_index_warnings(apps.get_models())


def search_index_warnings(models: Any) -> list[CheckMessage]:
    """The W070/W071 warnings for ``models``."""
    messages: list[CheckMessage] = []
    for model in models:
        for field in model._meta.concrete_fields:
            kind = _search_kind(field)
            if kind is None or _indexed(model, field.name, kind):
                continue
            if kind == "text":
                messages.append(Warning(
                    f"{model._meta.label}.{field.name} is a SearchVectorField without a GIN "
                    "index: every live search on it scans the whole table.",
                    hint=f"Add GinIndex(fields=[{field.name!r}], name=...) to Meta.indexes.",
                    obj=model, id="reactive.W070"))
            else:
                messages.append(Warning(
                    f"{model._meta.label}.{field.name} is a vector field without an HNSW or "
                    "IVFFlat index: every nearest-neighbour query on it scans the whole table.",
                    hint=f"Add HnswIndex(fields=[{field.name!r}], opclasses=['vector_cosine_ops'],"
                    " name=...) (the operator class of the distance you order by) to "
                    "Meta.indexes.", obj=model, id="reactive.W071"))
    return messages


def _search_kind(field: Any) -> str | None:
    names = {cls.__name__ for cls in type(field).__mro__}
    if "SearchVectorField" in names:
        return "text"
    if names & {"VectorField", "HalfVectorField", "SparseVectorField", "BitField"} and (
        type(field).__module__.startswith("pgvector")
    ):
        return "vector"
    return None


def _indexed(model: Any, name: str, kind: str) -> bool:
    wanted = {"GinIndex"} if kind == "text" else {"HnswIndex", "IvfflatIndex"}
    return any(
        type(index).__name__ in wanted and name in (index.fields or [])
        for index in model._meta.indexes
    )


@register(Tags.compatibility)
def check_documents(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """reactive.E100: the documents table (``ctx.db``) is excluded from change capture."""
    from reactive.capture.triggers import tracked_models
    from reactive.models import Document

    try:
        tracked = Document in tracked_models()
    except Exception:  # the settings themselves are broken: E001 says why
        return []
    if tracked:
        return []
    return [Error(
        "reactive.Document (the ctx.db documents table) is not tracked by change capture, so "
        "live queries over ctx.db would never re-run.",
        hint="Keep 'reactive' in TRACKED_APPS (or use '__all__') and 'reactive.Document' out "
        "of UNTRACKED_MODELS in settings.REACTIVE. See docs/guides/documents.md.",
        obj=Document, id="reactive.E100")]


@register(Tags.compatibility)
def check_observability(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """reactive.W074: ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's multiprocess mode) is
    set but is not a writable directory: counting the first call would fail."""
    import os

    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory and not (os.path.isdir(directory) and os.access(directory, os.W_OK)):
        return [Warning(
            f"PROMETHEUS_MULTIPROC_DIR is {directory!r}, which is not a writable directory: "
            "prometheus_client cannot record this process's metrics there.",
            hint="Create it (empty, wiped at each deployment's start) and make it writable by "
                 "every server and worker process, or unset it (docs/guides/observability.md).",
            id="reactive.W074",
        )]
    return []
