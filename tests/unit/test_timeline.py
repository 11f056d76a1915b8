"""bench/timeline.py: where a c = 1 request's and a cold start's time go, by stage."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

from bench import timeline


def _request(offset: float, create_ms: float) -> dict[str, float]:
    marks_ms = {
        "sent": 0.0,
        "function>": 0.2,
        "ingest>": 0.3,
        "verify>": 0.31,
        "verify<": 0.35,
        "put>": 0.5,
        "create>": 0.6,
        "create<": 0.6 + create_ms,
        "put-wait>": 0.7 + create_ms,
        "put-wait<": 0.8 + create_ms,
        "publish>": 0.9 + create_ms,
        "publish<": 2.9 + create_ms,
        "log>": 3.0 + create_ms,
        "log<": 3.1 + create_ms,
        "received": 3.4 + create_ms,
    }
    return {name: offset + ms / 1000 for name, ms in marks_ms.items()}


def test_each_stage_is_the_median_of_its_own_durations() -> None:
    runs = [_request(10.0 * i, create) for i, create in enumerate((2.0, 3.0, 9.0))]
    out = timeline.request_stages(runs)
    assert out["requests"] == 3
    assert out["p50_ms"] == pytest.approx(6.4)
    stages = out["stages_ms"]
    assert stages["to the function"] == pytest.approx(0.2)
    assert stages["— the signature's check"] == pytest.approx(0.04)
    assert stages["the three calls"] == pytest.approx(5.4)
    assert stages["— the record's create (the upload alongside)"] == pytest.approx(3.0)
    assert stages["— the publish"] == pytest.approx(2.0)
    assert stages["the answer out"] == pytest.approx(0.3)
    assert list(stages) == [stage for stage, _, _ in timeline.REQUEST_STAGES]


def test_a_stage_no_run_timed_is_an_error_not_a_missing_row() -> None:
    runs = [_request(0.0, 2.0)]
    del runs[0]["publish>"]
    with pytest.raises(RuntimeError, match="the publish"):
        timeline.request_stages(runs)


def test_every_function_the_wrapper_times_exists_where_it_looks() -> None:
    # The wrapper replaces these by name: a rename must fail here, not in a bench run.
    from hookpress import ingress
    from hookpress.backends.firestore import EventRecords
    from hookpress.backends.gcs import RawStore
    from hookpress.ingress import _http
    from hookpress.ingress._pipeline import Ingestor
    from hookpress.publication import Publication

    owners = {
        "hookpress.ingress": ingress,
        "Ingestor": Ingestor,
        "RawStore": RawStore,
        "EventRecords": EventRecords,
        "Publication": Publication,
        "_http": _http,
    }
    ast.parse(timeline.WRAPPER)  # it is Python
    wrapped = re.findall(r'_timed\((\S+), "(\w+)"', timeline.WRAPPER)
    assert len(wrapped) >= 5
    by_hand = [("RawStore", "start_put"), ("Ingestor", "ingest"), ("_http", "log_result")]
    for owner, name in [*wrapped, *by_hand]:
        assert callable(getattr(owners[owner], name)), (owner, name)
    # the two it replaces by hand find a request's marks by its headers, taken by position
    assert list(inspect.signature(Ingestor.ingest).parameters)[:3] == ["self", "source", "headers"]
    assert list(inspect.signature(_http.log_result).parameters) == [
        "ingestor",
        "log",
        "result",
        "name",
        "headers",
        "started",
    ]
    # the first request builds the runtime through the module's name, which the wrapper replaces
    assert "build_ingestor(os.environ)" in Path(ingress.__file__).read_text()


def test_a_request_carries_its_number_in_a_header_and_nothing_else_changes() -> None:
    request = b"POST /stripe HTTP/1.1\r\nHost: x\r\nStripe-Signature: t=1,v1=ab\r\n\r\n{}"
    numbered = timeline._with_id(request, 42)
    assert numbered == (
        b"POST /stripe HTTP/1.1\r\nX-Timeline-Id: 42\r\nHost: x\r\n"
        b"Stripe-Signature: t=1,v1=ab\r\n\r\n{}"
    )


def test_the_tail_sets_the_slowest_requests_stages_beside_everyones() -> None:
    # 95 requests whose create takes 2 ms, 5 whose create takes 30: the slowest 5 %
    runs = [_request(10.0 * i, 30.0 if i % 20 == 7 else 2.0) for i in range(100)]
    out = timeline.tail_stages(runs)
    create = "— the record's create (the upload alongside)"
    assert out["requests"] == 100
    assert out["slowest"] == 5
    assert out["slowest_from_ms"] == pytest.approx(33.4)
    assert out["p50_ms"] == pytest.approx(5.4)
    assert out["p99_ms"] == pytest.approx(33.4)
    assert out["stages_ms"][create] == pytest.approx(2.0)
    assert out["stages_p99_ms"][create] == pytest.approx(30.0)
    assert out["slowest_stages_ms"][create] == pytest.approx(30.0)
    assert out["slowest_stages_ms"]["— the publish"] == pytest.approx(2.0)
    lines = timeline.tail_markdown({"concurrency": 16} | out)
    assert any(line.startswith(f"| {create} | 2.0 | 30.0 | 30.0 |") for line in lines), lines
