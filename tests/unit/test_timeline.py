"""bench/timeline.py: where a c = 1 request's and a cold start's time go, by stage."""

from __future__ import annotations

import ast
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
    assert len(wrapped) >= 6
    for owner, name in [*wrapped, ("RawStore", "start_put")]:
        assert callable(getattr(owners[owner], name)), (owner, name)
    # the first request builds the runtime through the module's name, which the wrapper replaces
    assert "build_ingestor(os.environ)" in Path(ingress.__file__).read_text()
