"""Strict JSON: every ambiguity the ingress must refuse, and the cases it must accept."""

from __future__ import annotations

import pytest

from hookpress.jsonstrict import MalformedBody, parse_object


def rejected(body: bytes) -> str:
    with pytest.raises(MalformedBody) as info:
        parse_object(body)
    return info.value.reason


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "not_json"),
        (b"not json", "not_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"a string"', "not_an_object"),
        (b"42", "not_an_object"),
        (b"null", "not_an_object"),
        (b'{"a": 1, "a": 2}', "duplicate_key"),
        (b'{"x": {"a": 1, "a": 1}}', "duplicate_key"),
        (b'{"a": NaN}', "non_finite_number"),
        (b'{"a": Infinity}', "non_finite_number"),
        (b'{"a": -Infinity}', "non_finite_number"),
        (b'{"a": "\\ud800"}', "lone_surrogate"),
        (b'{"\\udfff": 1}', "lone_surrogate"),
        (b'{"a": ["x", "\\udc00y"]}', "lone_surrogate"),
        (b'{"a": "\xff"}', "not_utf8"),
        (b'{"a": "\xed\xa0\x80"}', "not_utf8"),  # an encoded surrogate is not UTF-8
        (b"\xef\xbb\xbf{}", "bom"),
        (b'{"a": 1} trailing', "not_json"),
        (b'{"a": 1}{"b": 2}', "not_json"),
    ],
)
def test_refuses(body: bytes, reason: str):
    assert rejected(body) == reason


def test_refuses_ten_thousand_levels_without_blowing_the_stack():
    assert rejected(b'{"a":' * 10_000 + b"1" + b"}" * 10_000) == "too_deep"
    assert rejected(b'{"a":' + b"[" * 10_000 + b"]" * 10_000 + b"}") == "too_deep"


def test_depth_limit_is_exact():
    ok = b'{"a":' * 63 + b"1" + b"}" * 63  # 63 objects + the outer = 64
    assert parse_object(b'{"x":' + ok + b"}", max_depth=65)
    assert rejected(b'{"a":' * 65 + b"1" + b"}" * 65) == "too_deep"
    deep = b'{"a":' * 64 + b"1" + b"}" * 64
    assert parse_object(deep)


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"id": "evt_1", "n": 1.5e10, "ok": true, "nested": {"list": [1, {"b": null}]}}',
        '{"emoji": "\U0001f600", "pair": "\\ud83d\\ude00"}'.encode(),
        b'  {"padded": 1}  \n',
    ],
)
def test_accepts(body: bytes):
    assert isinstance(parse_object(body), dict)
