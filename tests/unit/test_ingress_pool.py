"""The ingress's pipeline pool takes its size from THREADS, as gunicorn's threads did."""

from __future__ import annotations

import pytest

from hookpress.ingress import pool_size


@pytest.mark.parametrize(
    ("value", "size"),
    [("32", 32), ("1", 1), (" 64 ", 64), ("", 8), ("0", 8), ("-4", 8), ("eight", 8), ("2.5", 8)],
)
def test_pool_size_is_threads_when_it_is_a_positive_whole_number(value: str, size: int) -> None:
    assert pool_size({"THREADS": value}) == size


def test_pool_size_defaults_to_eight() -> None:
    assert pool_size({}) == 8
