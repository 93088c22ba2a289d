"""Tests for reactive.functions.convert: turning function results into Convex values."""

from __future__ import annotations

import dataclasses
import datetime
import enum
from collections import OrderedDict
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from django.contrib.auth.models import User
from django.test import override_settings
from pydantic import BaseModel

from reactive.exceptions import ValueEncodingError
from reactive.functions.convert import register, to_value
from reactive.values import MAX_DEPTH, Int64, encode
from tests.testapp.models import Attachment, Item

CREATED = datetime.datetime(2024, 1, 2, 3, 4, 5, 678_901, tzinfo=datetime.UTC)
CREATED_MS = 1704164645678.901
UID = UUID("12345678-1234-5678-1234-567812345678")


def _item(**overrides: Any) -> Item:
    fields: dict[str, Any] = {
        "pk": 7,
        "name": "lamp",
        "price": Decimal("19.99"),
        "created_at": CREATED,
        "owner_id": 5,
        "data": {"tags": ["a"], "weight": Decimal("1.5")},
        "uid": UID,
    }
    return Item(**(fields | overrides))


# Plain values and containers -----------------------------------------------------------------


def test_to_value_keeps_plain_values() -> None:
    value = {"n": None, "b": True, "i": 3, "f": 1.5, "s": "x", "raw": b"\x00", "big": Int64(1)}
    assert to_value(value) == value


def test_to_value_turns_sequences_and_iterators_into_lists() -> None:
    def numbers() -> Iterator[int]:
        yield from (1, 2)

    value = {"t": (1, 2), "g": numbers(), "m": map(str, [1, 2]), "r": range(2), "l": [1, (2,)]}
    assert to_value(value) == {
        "t": [1, 2],
        "g": [1, 2],
        "m": ["1", "2"],
        "r": [0, 1],
        "l": [1, [2]],
    }


def test_to_value_turns_sets_into_lists_in_iteration_order() -> None:
    mixed = {1, "a"}  # not sortable, so order must come from iteration
    assert to_value(mixed) == list(mixed)
    assert to_value(frozenset({3})) == [3]


def test_to_value_turns_mappings_into_dicts() -> None:
    assert to_value(OrderedDict(a=1)) == {"a": 1}
    assert type(to_value(OrderedDict(a=1))) is dict


def test_to_value_rejects_non_string_dict_key_naming_its_type() -> None:
    with pytest.raises(ValueEncodingError, match=r"value\.rows: .*key 1 of type int"):
        to_value({"rows": {1: "a"}})


def test_to_value_rejects_unknown_type_naming_type_and_path() -> None:
    class Opaque:
        pass

    with pytest.raises(ValueEncodingError) as info:
        to_value({"rows": [1, {"author": Opaque()}]}, root="result")
    message = str(info.value)
    assert "result.rows[1].author" in message
    assert "Opaque to a Convex value; return a dict, list, model instance, queryset" in message


def test_to_value_rejects_deeper_than_max_depth() -> None:
    value: list[Any] = []
    for _ in range(MAX_DEPTH):
        value = [value]
    with pytest.raises(ValueEncodingError, match="nested at most 64"):
        to_value(value)
    assert to_value(value[0]) == value[0]


def test_to_value_rejects_self_referencing_dict_without_recursion_error() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(ValueEncodingError, match="nested at most"):
        to_value(loop)


# Scalars with default conversions ------------------------------------------------------------


def test_to_value_turns_aware_datetime_into_float_ms() -> None:
    other_zone = CREATED.astimezone(datetime.timezone(datetime.timedelta(hours=-5)))
    assert to_value(CREATED) == pytest.approx(CREATED_MS, abs=1e-6)
    assert to_value(other_zone) == to_value(CREATED)
    assert to_value(datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)) == 0.0


@override_settings(USE_TZ=True, TIME_ZONE="America/New_York")
def test_to_value_reads_naive_datetime_as_utc_when_use_tz() -> None:
    assert to_value(CREATED.replace(tzinfo=None)) == to_value(CREATED)


@override_settings(USE_TZ=False, TIME_ZONE="America/New_York")
def test_to_value_reads_naive_datetime_in_time_zone_without_use_tz() -> None:
    # 03:04 in New York in January is 08:04 UTC.
    assert to_value(CREATED.replace(tzinfo=None)) == to_value(CREATED + datetime.timedelta(hours=5))


def test_to_value_converts_dates_times_durations_decimals_uuids() -> None:
    value = {
        "date": datetime.date(2024, 2, 29),
        "time": datetime.time(13, 5, 0, 250_000),
        "duration": datetime.timedelta(minutes=1, milliseconds=500),
        "decimal": Decimal("12345678901234567890.123456789"),
        "uuid": UID,
    }
    assert to_value(value) == {
        "date": "2024-02-29",
        "time": "13:05:00.250000",
        "duration": 60.5,
        "decimal": "12345678901234567890.123456789",
        "uuid": "12345678-1234-5678-1234-567812345678",
    }


class Color(enum.Enum):
    RED = "red"
    PRICE = Decimal("2.50")


class Size(enum.IntEnum):
    SMALL = 1


class Mood(enum.StrEnum):
    HAPPY = "happy"


def test_to_value_turns_enum_into_its_converted_value() -> None:
    assert to_value([Color.RED, Color.PRICE, Size.SMALL, Mood.HAPPY]) == ["red", "2.50", 1, "happy"]
    assert type(to_value(Size.SMALL)) is int
    assert type(to_value(Mood.HAPPY)) is str


@dataclasses.dataclass
class Point:
    x: int
    when: datetime.datetime
    tags: tuple[str, ...] = ()


def test_to_value_turns_dataclass_into_dict_of_converted_fields() -> None:
    assert to_value(Point(1, CREATED, ("a",))) == {"x": 1, "when": CREATED_MS, "tags": ["a"]}


class Profile(BaseModel):
    name: str
    joined: datetime.date
    balance: Decimal


def test_to_value_turns_pydantic_model_into_dict() -> None:
    profile = Profile(name="ann", joined=datetime.date(2024, 1, 1), balance=Decimal("1.10"))
    assert to_value(profile) == {"name": "ann", "joined": "2024-01-01", "balance": "1.10"}


# Model instances (no database) ---------------------------------------------------------------


def test_to_value_turns_model_into_document() -> None:
    assert to_value(_item()) == {
        "_id": "7",
        "_creationTime": pytest.approx(CREATED_MS, abs=1e-6),
        "name": "lamp",
        "price": "19.99",
        "created_at": pytest.approx(CREATED_MS, abs=1e-6),
        "owner": "5",
        "data": {"tags": ["a"], "weight": "1.5"},
        "uid": "12345678-1234-5678-1234-567812345678",
    }


def test_to_value_document_is_encodable() -> None:
    encoded = encode(to_value([_item()], root="result"))
    assert encoded[0]["_id"] == "7"  # type: ignore[index,call-overload]


def test_to_value_model_without_auto_now_add_has_no_creation_time() -> None:
    document = to_value(User(pk=5, username="ann", date_joined=CREATED))
    assert isinstance(document, dict)
    assert document["_id"] == "5"
    assert "_creationTime" not in document
    assert "id" not in document
    assert document["username"] == "ann"
    assert document["date_joined"] == pytest.approx(CREATED_MS, abs=1e-6)
    assert document["last_login"] is None


def test_to_value_null_foreign_key_is_none() -> None:
    document = to_value(_item(owner_id=None))
    assert isinstance(document, dict)
    assert document["owner"] is None


def test_to_value_foreign_key_does_not_load_related_object() -> None:
    # Without the django_db mark any query would fail this test.
    document = to_value(Attachment(pk=1, item_id=7, file="attachments/a.txt"))
    assert document == {"_id": "1", "item": "7", "file": "attachments/a.txt"}


def test_to_value_empty_file_field_is_none() -> None:
    assert to_value(Attachment(pk=1, item_id=7)) == {"_id": "1", "item": "7", "file": None}


def test_to_value_omits_deferred_fields_without_querying() -> None:
    # from_db marks every field it is not given as deferred, as .only() would.
    item = Item.from_db("default", ["id", "name", "owner_id"], [7, "lamp", None])
    assert item.get_deferred_fields()
    assert to_value(item) == {"_id": "7", "name": "lamp", "owner": None}


def test_to_value_rejects_unsaved_model_instance() -> None:
    with pytest.raises(ValueEncodingError, match=r"value\[0\]: .*Item instance has no primary key"):
        to_value([Item(name="new", price=Decimal(1))])


def test_to_value_empty_queryset_is_empty_list() -> None:
    assert to_value(Item.objects.none()) == []


# Querysets (database) ------------------------------------------------------------------------


@pytest.mark.django_db
def test_to_value_evaluates_queryset_into_documents(django_assert_num_queries: Any) -> None:
    owner = User.objects.create(username="ann")
    item = Item.objects.create(name="lamp", price=Decimal("19.99"), owner=owner)
    with django_assert_num_queries(1):
        documents = to_value(Item.objects.all())
    assert isinstance(documents, list)
    assert documents[0] == to_value(item)
    assert documents[0]["owner"] == str(owner.pk)  # type: ignore[index,call-overload]
    assert documents[0]["_creationTime"] == to_value(item.created_at)  # type: ignore[index,call-overload]


@pytest.mark.django_db
def test_to_value_turns_values_and_values_list_into_dicts_and_lists() -> None:
    Item.objects.create(name="lamp", price=Decimal("19.99"))
    assert to_value(Item.objects.values("name", "price")) == [{"name": "lamp", "price": "19.99"}]
    assert to_value(Item.objects.values_list("name", "price")) == [["lamp", "19.99"]]
    assert to_value(Item.objects.values_list("name", flat=True)) == ["lamp"]


# register ------------------------------------------------------------------------------------
# The registry is global, so each test registers classes of its own.


def test_register_adds_converter_for_type_and_subclasses() -> None:
    class Money:
        def __init__(self, cents: int) -> None:
            self.cents = cents

    class Euro(Money):
        pass

    register(Money, lambda money: {"cents": money.cents, "at": CREATED})
    assert to_value([Money(5), Euro(7)]) == [
        {"cents": 5, "at": CREATED_MS},
        {"cents": 7, "at": CREATED_MS},
    ]


def test_register_most_specific_class_wins() -> None:
    class Money:
        def __init__(self, cents: int) -> None:
            self.cents = cents

    class Euro(Money):
        pass

    register(Money, lambda money: money.cents)
    register(Euro, lambda euro: f"€{euro.cents}")
    assert to_value([Money(5), Euro(7)]) == [5, "€7"]


def test_register_again_replaces_converter() -> None:
    class Flag:
        pass

    register(Flag, lambda flag: 1)
    register(Flag, lambda flag: 2)
    assert to_value(Flag()) == 2


def test_register_can_override_a_default_for_a_subclass() -> None:
    class Stamp(datetime.datetime):
        pass

    register(Stamp, lambda stamp: stamp.isoformat())
    assert to_value(Stamp(2024, 1, 1)) == "2024-01-01T00:00:00"
    assert to_value(CREATED) == CREATED_MS


@pytest.mark.parametrize("cls", [str, int, dict, list, tuple, Int64, type(None)])
def test_register_rejects_types_that_are_already_values(cls: type) -> None:
    with pytest.raises(TypeError, match="already a Convex value"):
        register(cls, str)


def test_register_rejects_non_class_and_non_callable() -> None:
    with pytest.raises(TypeError, match="needs a class"):
        register("Money", str)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="must be callable"):
        register(Point, None)  # type: ignore[arg-type]


def test_register_converter_that_never_reduces_is_rejected() -> None:
    class Loop:
        pass

    register(Loop, lambda loop: Loop())
    with pytest.raises(ValueEncodingError, match=r"value\.x: converting a .*Loop took more"):
        to_value({"x": Loop()})


def test_user_documents_never_carry_the_password_hash() -> None:
    from django.contrib.auth.models import User

    from reactive.functions.convert import to_value

    document = to_value(User(pk=3, username="ada", password="pbkdf2_sha256$secret"))
    assert isinstance(document, dict)
    assert document["username"] == "ada"
    assert "password" not in document
