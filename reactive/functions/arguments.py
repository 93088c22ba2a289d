"""Call arguments as clients send them (``decode_wire_args``), and argument and return-value
validation from a function's type hints, with pydantic.

A function's parameters after ``ctx`` become a TypedDict validated by pydantic (extra keys
forbidden); ``returns=`` becomes a ``TypeAdapter``. ``Id[Model]`` validates a document id.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, Literal, NotRequired, Required

from pydantic import BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic needs it on Python < 3.12

from reactive import values
from reactive.exceptions import BadRequest, DefinitionError, ValueDecodingError
from reactive.suggest import did_you_mean

Problems = list[tuple[str, str]]

# Parameters whose wire name is the camelCase Convex uses.
CAMEL_ALIASES = {"pagination_opts": "paginationOpts"}


def decode_wire_args(raw: Any, *, encoded: bool = True) -> dict[str, Any]:
    """The argument object of a call as a client sends it, decoded.

    Accepts ``[{...}]`` (the positional wrapper of the npm client and the sync protocol),
    ``{...}`` (the Python HTTP client) or nothing (no arguments). Convex-encoded values are
    decoded unless ``encoded`` is false (clean JSON, taken as is). Raises BadRequest naming what
    is wrong, with code ``BadConvexValue`` for a value that does not decode. Every edge (HTTP,
    websocket, Reactor) decodes arguments here, so they accept and refuse the same things.
    """
    if raw is None:
        return {}
    if isinstance(raw, list):
        if len(raw) > 1:
            raise BadRequest(f"'args' must hold at most one object, not {len(raw)}.")
        raw = raw[0] if raw else {}
    if not isinstance(raw, dict):
        raise BadRequest(f"'args' must hold an object, not {type(raw).__name__}.")
    if not encoded:
        return raw
    try:
        decoded = values.decode(raw, root="args")
    except ValueDecodingError as exc:
        raise BadRequest(
            f"'args' is not a valid Convex value: {exc}", code="BadConvexValue"
        ) from None
    assert isinstance(decoded, dict)
    return decoded


class Id:
    """``Id[Model]``: an argument holding the id of a ``Model`` row, as clients send it (a string).

    Validates with the model's primary-key field and hands the function the Python pk value
    (an ``int`` for ``AutoField``). It does not load the row: do that inside the function so the
    read is part of its transaction and, for queries, of its read set.
    """

    def __class_getitem__(cls, model: Any) -> Any:
        def to_pk(value: Any) -> Any:
            if isinstance(value, bool) or not isinstance(value, str | int):
                raise ValueError(f"expected an id of {model._meta.label} (a string)")
            try:
                return model._meta.pk.to_python(value)
            except Exception:
                raise ValueError(f"'{value}' is not a valid id of {model._meta.label}") from None

        return Annotated[Any, BeforeValidator(to_pk)]


class ArgumentsSchema:
    """Validates a call's arguments against a function signature (without its ``ctx``).

    Parameters without a default are required; the others may be left out, and then the
    function's own default applies. Unknown keys are refused unless the function takes
    ``**kwargs``.
    """

    def __init__(self, func: Callable[..., Any], function_name: str) -> None:
        self._typed_dict, self.names = _typed_dict_for(func, function_name)
        try:
            self._adapter: TypeAdapter[Any] = TypeAdapter(self._typed_dict)
        except Exception as exc:
            raise DefinitionError(
                f"Function '{function_name}' has argument types pydantic cannot validate: {exc}"
            ) from exc

    def validate(self, args: Mapping[str, Any]) -> tuple[dict[str, Any] | None, Problems]:
        """Return ``(kwargs, [])`` for valid args, or ``(None, problems)`` naming each field."""
        try:
            return dict(self._adapter.validate_python(dict(args))), []
        except ValidationError as exc:
            known = [CAMEL_ALIASES.get(name, name) for name in self.names]
            return None, describe(exc, known_keys=known)

    def json_schema(self) -> dict[str, Any]:
        try:
            return self._adapter.json_schema()
        except Exception:  # a type pydantic can validate but not describe (e.g. Id[Model])
            return {"type": "object", "properties": {name: {} for name in self.names}}


class ReturnsSchema:
    """Validates a function's result against its ``returns=`` type."""

    def __init__(self, returns: Any) -> None:
        self._adapter: TypeAdapter[Any] = TypeAdapter(returns)

    def validate(self, value: Any) -> tuple[Any, Problems]:
        try:
            return self._adapter.validate_python(value), []
        except ValidationError as exc:
            return None, describe(exc)


def describe(exc: ValidationError, known_keys: Sequence[str] = ()) -> Problems:
    """Turn pydantic errors into ``(dotted.path, message)`` pairs for our error messages; an
    unknown top-level key gets the closest of ``known_keys`` as a suggestion."""
    problems: Problems = []
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in error["loc"])
        message = error["msg"]
        if error["type"] == "extra_forbidden" and len(error["loc"]) == 1:
            suggestion = did_you_mean(str(error["loc"][0]), known_keys)
            takes = ", ".join(known_keys) or "no arguments"
            message = "unknown argument" + (f", {suggestion[0].lower()}{suggestion[1:]}"
                                            if suggestion else "")
            message += f" (the function takes {takes})"
        elif error["type"] != "missing" and "input" in error:
            message += f" (got {_short(error['input'])})"
        problems.append((path, message))
    return problems


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _typed_dict_for(func: Callable[..., Any], function_name: str) -> tuple[Any, tuple[str, ...]]:
    signature = inspect.signature(func)
    params = list(signature.parameters.values())
    if not params or params[0].kind not in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        raise DefinitionError(
            f"Function '{function_name}' must take the context as its first parameter "
            f"(def {func.__name__}(ctx, ...))."
        )
    try:
        hints = typing.get_type_hints(func, include_extras=True)
    except Exception as exc:
        raise DefinitionError(
            f"Cannot resolve the type hints of '{function_name}': {exc}. Import every type "
            "used in the signature at module level."
        ) from exc
    fields: dict[str, Any] = {}
    extra: Literal["forbid", "allow"] = "forbid"
    for param in params[1:]:
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            extra = "allow"
            continue
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
            raise DefinitionError(
                f"Function '{function_name}' parameter '{param.name}' must be passable by "
                "keyword: clients send arguments as an object."
            )
        annotation = hints.get(param.name, Any)
        if param.name in CAMEL_ALIASES:  # clients send `paginationOpts`; Python says snake_case
            annotation = Annotated[annotation, Field(alias=CAMEL_ALIASES[param.name])]
        required = param.default is inspect.Parameter.empty
        fields[param.name] = Required[annotation] if required else NotRequired[annotation]
    typed_dict = TypedDict(f"{func.__name__}_args", fields)  # type: ignore[misc]
    typed_dict.__pydantic_config__ = ConfigDict(  # type: ignore[attr-defined]
        extra=extra, arbitrary_types_allowed=True, validate_by_name=True, validate_by_alias=True
    )
    return typed_dict, tuple(fields)
