"""Converts what user functions return (models, querysets, dataclasses...) into Convex values.

The default conversions live here; ``register`` lets a project add converters for its own types.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set, ValuesView
from decimal import Decimal
from typing import Any, TypeVar, cast
from uuid import UUID

from django.conf import settings
from django.db.models import DateTimeField, Field, FileField, Model, QuerySet
from django.utils import timezone
from pydantic import BaseModel

from reactive.exceptions import ValueEncodingError
from reactive.values import MAX_DEPTH, ConvexValue, Int64, format_path

__all__ = ["register", "to_value"]

T = TypeVar("T")

# A converter may return anything convertible, but a chain of conversions must end in a plain
# value; this bounds it so a converter returning its own type fails instead of looping.
_MAX_CONVERSIONS = 8
_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MILLISECOND = datetime.timedelta(milliseconds=1)

# Types to_value handles before consulting the registry, so registering them would do nothing.
_PLAIN: frozenset[type] = frozenset({type(None), bool, int, float, str, bytes, Int64})
_BUILTIN = _PLAIN | {dict, list, tuple}


class _Invalid(Exception):
    """A problem found deep inside a result; containers add their path segment on the way out."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.segments: list[str | int] = []  # innermost first


def _no_converter(obj: object) -> object:
    raise AssertionError("never called: to_value checks for this function before calling")


_converters = functools.singledispatch(_no_converter)


def register(cls: type[T], converter: Callable[[T], object]) -> None:
    """Convert instances of ``cls`` (and its subclasses) with ``converter`` from now on.

    ``converter`` may return anything ``to_value`` accepts (a dict, a list, another registered
    type...); the result is converted in turn. The most specific registered class in an
    object's MRO wins, and registering a class again replaces its converter, so the defaults
    (``Model``, ``datetime.datetime``, ``Decimal``...) can be overridden too. Call it at import
    time (e.g. in ``AppConfig.ready``): it is not synchronised with conversions running in
    other threads.

    Raises ``TypeError`` if ``cls`` is not a class, if ``converter`` is not callable, or if
    ``cls`` is a type that is already a Convex value (``str``, ``dict``, ``Int64``...).
    """
    if not isinstance(cls, type):
        raise TypeError(f"register() needs a class, got {cls!r}.")
    if not callable(converter):
        raise TypeError(f"The converter for {cls.__qualname__} must be callable.")
    if cls in _BUILTIN:
        raise TypeError(f"{cls.__qualname__} is already a Convex value; it cannot be converted.")
    _converters.register(cls, converter)


def to_value(obj: object, *, root: str = "value") -> ConvexValue:
    """Convert a user function's result into a value that ``values.encode`` accepts.

    - ``None``, bool, int, float, str, bytes and ``Int64`` are kept; lists, tuples, sets,
      frozensets, generators and other iterators become lists in iteration order (sets are not
      sorted: their elements may not be comparable); dicts and other mappings become dicts.
    - A model instance becomes a document: ``_id`` (``str(pk)``), ``_creationTime`` (ms since
      the epoch, from the first ``DateTimeField(auto_now_add=True)``, omitted if there is none),
      then every concrete field except the primary key: foreign keys as ``str(id)`` or None,
      files as their name or None. Deferred fields are left out rather than fetched.
    - A queryset is evaluated into a list (of documents, dicts for ``.values()``, lists for
      ``.values_list()``).
    - datetimes become float ms since the epoch; a naive one is read as UTC when ``USE_TZ`` is
      on (that is how Django stores them) and in ``TIME_ZONE`` otherwise. Dates and times
      become ISO strings, timedeltas float seconds, Decimals and UUIDs strings, enums their
      value, dataclasses and pydantic models dicts of their fields.

    Raises ``ValueEncodingError`` naming the path (``root`` first) for an unsaved model
    instance, a dict key that is not a string, nesting deeper than 64 levels, or a type with
    no conversion. Field names and int ranges are checked later, by ``values.encode``.
    """
    try:
        return _to_value(obj, 0, 0)
    except _Invalid as exc:
        path = format_path(root, reversed(exc.segments))
        raise ValueEncodingError(f"Cannot convert {path}: {exc.reason}") from None


def _to_value(obj: object, depth: int, conversions: int) -> ConvexValue:
    cls = type(obj)
    # Exact types first: they are the common case and must not pay for dispatch. Subclasses go
    # through the registry so that a project can give them their own converter.
    if cls in _PLAIN:
        return cast(ConvexValue, obj)
    if cls is dict:
        return _from_mapping(cast(dict[Any, Any], obj), depth + 1)
    if cls is list or cls is tuple:
        return _from_iterable(cast(Iterable[Any], obj), depth + 1)
    converter = _converters.dispatch(cls)
    if converter is not _no_converter:
        if conversions >= _MAX_CONVERSIONS:
            raise _Invalid(
                f"converting a {_type_name(obj)} took more than {_MAX_CONVERSIONS} steps; a "
                "registered converter must return a value that gets closer to a plain one."
            )
        return _to_value(converter(obj), depth, conversions + 1)
    return _fallback(obj, depth)


def _fallback(obj: object, depth: int) -> ConvexValue:
    """Subclasses of the plain types, and types recognised by protocol rather than by class."""
    if isinstance(obj, str | int | float | bytes):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}
        return _from_mapping(fields, depth + 1)
    if isinstance(obj, Mapping):
        return _from_mapping(obj, depth + 1)
    if isinstance(obj, Sequence | Set | Iterator | ValuesView):
        return _from_iterable(obj, depth + 1)
    raise _Invalid(
        f"cannot convert {_type_name(obj)} to a Convex value; return a dict, list, model "
        "instance, queryset or a plain value, or add a converter with "
        "reactive.functions.convert.register()."
    )


def _from_mapping(obj: Mapping[Any, Any], depth: int) -> ConvexValue:
    if depth > MAX_DEPTH:
        raise _too_deep()
    out: dict[str, ConvexValue] = {}
    for key, item in obj.items():
        if not isinstance(key, str):
            raise _Invalid(
                f"dict keys must be strings, found the key {key!r} of type {_type_name(key)}."
            )
        try:
            out[key] = _to_value(item, depth, 0)
        except _Invalid as exc:
            exc.segments.append(key)
            raise
    return out


def _from_iterable(items: Iterable[Any], depth: int) -> ConvexValue:
    if depth > MAX_DEPTH:
        raise _too_deep()
    out: list[ConvexValue] = []
    for index, item in enumerate(items):
        try:
            out.append(_to_value(item, depth, 0))
        except _Invalid as exc:
            exc.segments.append(index)
            raise
    return out


def _too_deep() -> _Invalid:
    return _Invalid(f"values may be nested at most {MAX_DEPTH} levels deep.")


def _type_name(value: object) -> str:
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


# Default converters --------------------------------------------------------------------------


def _model_to_document(obj: Model) -> dict[str, object]:
    if obj.pk is None:
        raise _Invalid(
            f"the {_type_name(obj)} instance has no primary key; save it before returning it."
        )
    deferred = obj.get_deferred_fields()
    document: dict[str, object] = {"_id": str(obj.pk)}
    created = _creation_field(type(obj))
    if created is not None and created.attname not in deferred:
        created_at = getattr(obj, created.attname)
        if created_at is not None:
            document["_creationTime"] = _datetime_to_ms(created_at)
    hidden = hidden_fields(type(obj))
    for field in obj._meta.concrete_fields:
        if field.primary_key or field.attname in deferred or field.name in hidden:
            continue
        # attname reads the raw column, so a foreign key costs no query.
        value = getattr(obj, field.attname)
        if field.is_relation:
            value = None if value is None else str(value)
        elif isinstance(field, FileField):
            value = (value.name or None) if value is not None else None  # "" means no file
        document[field.name] = value
    return document


@functools.cache
def hidden_fields(model: type[Model]) -> frozenset[str]:
    """Fields never sent in documents: a user's ``password`` hash, and the names a model lists
    in ``REACTIVE_HIDDEN_FIELDS``."""
    from django.contrib.auth.base_user import AbstractBaseUser

    names = set(getattr(model, "REACTIVE_HIDDEN_FIELDS", ()))
    if issubclass(model, AbstractBaseUser):
        names.add("password")
    return frozenset(names)


@functools.cache
def _creation_field(model: type[Model]) -> Field[Any, Any] | None:
    for field in model._meta.concrete_fields:
        if isinstance(field, DateTimeField) and field.auto_now_add:
            return field
    return None


def _datetime_to_ms(value: datetime.datetime) -> float:
    if timezone.is_naive(value):
        if settings.USE_TZ:
            value = value.replace(tzinfo=datetime.UTC)
        else:
            value = timezone.make_aware(value, timezone.get_default_timezone())
    # Dividing timedeltas works on whole microseconds, so no float rounding before the end.
    return (value - _EPOCH) / _MILLISECOND


def _queryset_to_list(queryset: QuerySet[Any, Any]) -> list[Any]:
    return list(queryset)


def _to_iso(value: datetime.date | datetime.time) -> str:
    return value.isoformat()


def _enum_value(member: enum.Enum) -> object:
    return member.value


def _pydantic_dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="python")


register(Model, _model_to_document)
register(QuerySet, _queryset_to_list)
register(datetime.datetime, _datetime_to_ms)  # more specific than date, so it wins
register(datetime.date, _to_iso)
register(datetime.time, _to_iso)
register(datetime.timedelta, datetime.timedelta.total_seconds)
register(Decimal, str)  # a string keeps every digit; a float would not
register(UUID, str)
register(enum.Enum, _enum_value)
register(BaseModel, _pydantic_dump)
register(bytearray, bytes)
register(memoryview, bytes)
register(set, list)
register(frozenset, list)


def _register_vectors() -> None:
    """pgvector columns read back as numpy arrays (VectorField) or pgvector's own types:
    documents carry them as lists of numbers."""
    try:
        import numpy
        from pgvector import HalfVector, SparseVector
    except ImportError:  # pragma: no cover - both come with the pgvector dependency
        return
    register(numpy.ndarray, lambda array: [float(x) for x in array.tolist()])
    register(HalfVector, lambda vector: [float(x) for x in vector.to_list()])
    register(SparseVector, lambda vector: [float(x) for x in vector.to_list()])


_register_vectors()
