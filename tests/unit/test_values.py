"""Firestore's JSON values: what the REST adapter writes reads back as the same Python values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hookpress.backends._values import (
    Increment,
    ServerTime,
    decode_fields,
    encode_fields,
    rfc3339,
)


def test_every_kind_of_value_round_trips():
    when = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    fields = {
        "s": "text ü",
        "n": 2**62,
        "neg": -1,
        "f": 1.5,
        "yes": True,
        "no": False,
        "none": None,
        "when": when,
        "map": {"a": 1, "b": {"c": [1, "x", None]}},
        "list": [1, 2.5, "three"],
        "bytes": b"\x00\xff",
    }
    encoded = encode_fields(fields)
    assert encoded["n"] == {"integerValue": str(2**62)}  # 64-bit integers travel as strings
    assert encoded["yes"] == {"booleanValue": True}  # not an integer, though bool is one
    assert encoded["when"] == {"timestampValue": "2026-01-02T03:04:05.678901Z"}
    decoded = decode_fields(encoded)
    assert decoded == fields


def test_a_naive_datetime_is_taken_as_utc_and_an_offset_is_converted():
    assert rfc3339(datetime(2026, 1, 1, 12)) == "2026-01-01T12:00:00.000000Z"
    plus_two = datetime(2026, 1, 1, 14, tzinfo=timezone(timedelta(hours=2)))
    assert rfc3339(plus_two) == "2026-01-01T12:00:00.000000Z"


@pytest.mark.parametrize(
    ("text", "micro"),
    [
        ("2026-12-01T18:26:02.542639Z", 542639),
        ("2026-12-01T18:26:02.542639123Z", 542639),  # nanoseconds: kept in the text
        ("2026-12-01T18:26:02Z", 0),
        ("2026-12-01T18:26:02.5Z", 500000),
        ("2026-12-01T20:26:02.1+02:00", 100000),
    ],
)
def test_server_times_keep_their_exact_text(text, micro):
    stamp = ServerTime.parse(text)
    assert stamp.tzinfo is UTC
    assert (stamp.hour, stamp.minute, stamp.second, stamp.microsecond) == (18, 26, 2, micro)
    assert rfc3339(stamp) == text  # a precondition repeats it to the nanosecond
    assert decode_fields({"t": {"timestampValue": text}})["t"] == stamp


def test_increments_are_transforms_not_values():
    assert Increment(1) == Increment(1) != Increment(2)
    with pytest.raises(TypeError):
        encode_fields({"attempts": Increment(1)})


def test_an_unknown_value_type_is_refused_both_ways():
    with pytest.raises(TypeError):
        encode_fields({"x": object()})
    with pytest.raises(ValueError, match="unknown Firestore value"):
        decode_fields({"x": {"mysteryValue": 1}})


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(1970, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
    ),
    nanos=st.integers(min_value=0, max_value=999_999_999),
    digits=st.integers(min_value=0, max_value=9),
)
def test_any_server_time_is_read_to_the_microsecond(moment, nanos, digits):
    fraction = f"{nanos:09d}"[:digits]
    whole = moment.replace(microsecond=0, tzinfo=None).isoformat()
    text = whole + (f".{fraction}" if digits else "") + "Z"
    stamp = ServerTime.parse(text)
    want = moment.replace(microsecond=int((fraction + "000000")[:6]))
    assert stamp.tzinfo is UTC
    assert stamp == want
    assert (stamp.year, stamp.microsecond) == (want.year, want.microsecond)
    assert rfc3339(stamp) == text
