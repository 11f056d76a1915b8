"""Fair lanes: the filters (as Pub/Sub reads them), their local evaluator, the shares."""

from __future__ import annotations

import pytest

from hookpress.lanes import lane_filter, lane_shares, lanes_in_use
from hookpress.local.lanerouter import FilterSyntaxError, LaneRouter, matches

ALL = ("high", "normal", "bulk")


@pytest.mark.parametrize(
    ("text", "attributes", "expected"),
    [
        ('attributes.lane = "high"', {"lane": "high"}, True),
        ('attributes.lane = "high"', {"lane": "bulk"}, False),
        ('attributes.lane = "high"', {}, False),
        ('attributes.lane != "high"', {}, True),  # documented: absent counts as "not equal"
        ("attributes:lane", {"lane": ""}, True),
        ("NOT attributes:lane", {}, True),
        ('NOT attributes:lane OR (attributes.lane != "a" AND attributes.lane != "b")',
         {"lane": "b"}, False),
        ('NOT attributes:lane OR (attributes.lane != "a" AND attributes.lane != "b")',
         {"lane": "c"}, True),
        ("", {"x": "y"}, True),
    ],
)  # fmt: skip
def test_the_filter_grammar_the_lanes_use(text, attributes, expected):
    assert matches(text, attributes) is expected


@pytest.mark.parametrize("text", ["attributes.lane = high", "(attributes:lane", "lane = 'x'"])
def test_a_filter_outside_the_grammar_is_refused(text):
    with pytest.raises(FilterSyntaxError):
        matches(text, {})


@pytest.mark.parametrize("used", [("high",), ("bulk",), ("high", "bulk"), ()])
def test_every_message_routes_to_exactly_one_lane(used):
    lanes = lanes_in_use(used)
    router = LaneRouter(
        "p", {lane: f"t-{lane}" for lane in lanes},
        {lane: lane_filter(lane, lanes) or "" for lane in lanes},
    )  # fmt: skip
    for attributes in ({"lane": "high"}, {"lane": "bulk"}, {"lane": "normal"}, {}, {"lane": "?"}):
        lane = router.route(attributes)
        wanted = attributes.get("lane") if attributes.get("lane") in lanes else "normal"
        assert lane == wanted, (used, attributes, lane)


def test_shares_add_up_to_the_cap_in_whole_instances():
    assert dict(lane_shares(8, 1, ALL)) == {"high": 2, "normal": 4, "bulk": 2}
    assert dict(lane_shares(8, 2, ALL)) == {"high": 2, "normal": 4, "bulk": 2}
    assert dict(lane_shares(12, 1, ("high", "normal"))) == {"high": 3, "normal": 9}
    assert dict(lane_shares(3, 1, ALL)) == {"high": 1, "normal": 1, "bulk": 1}
    for cap, per in ((8, 1), (16, 4), (40, 2), (3, 1)):
        assert sum(lane_shares(cap, per, ALL).values()) == cap
    with pytest.raises(ValueError, match="cannot give each"):
        lane_shares(2, 1, ALL)
    with pytest.raises(ValueError, match="cannot give each"):
        lane_shares(8, 3, ALL)


def test_one_lane_needs_no_filter():
    assert lanes_in_use(["normal", "normal"]) == ("normal",)
    assert lane_filter("normal", ("normal",)) is None
    assert lane_filter("high", ALL) == 'attributes.lane = "high"'


class _Published:
    def __init__(self, fail: bool) -> None:
        self.fail = fail

    def result(self, timeout: float) -> str:
        if self.fail:
            raise TimeoutError("publish lost")
        return "m-1"


class _Publisher:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []
        self.fail = fail

    def publish(self, topic: str, data: bytes, **attributes: str) -> _Published:
        self.sent.append((topic, data, attributes))
        return _Published(self.fail)


def _router(publisher: _Publisher) -> LaneRouter:
    router = LaneRouter(
        "p",
        {lane: f"t-{lane}" for lane in ALL},
        {lane: lane_filter(lane, ALL) or "" for lane in ALL},
    )
    router._publisher = publisher
    return router


def _push(attributes: dict[str, str]) -> bytes:
    import base64
    import json

    data = base64.b64encode(b'{"event_key":"k"}').decode()
    return json.dumps({"message": {"data": data, "attributes": attributes}}).encode()


def test_a_pushed_message_is_republished_to_its_lane_before_it_is_acked():
    publisher = _Publisher()
    router = _router(publisher)
    assert router.handle_push(_push({"lane": "bulk", "event_key": "k"})) == 204
    assert router.handle_push(_push({"event_key": "k"})) == 204  # a replay: no lane attribute
    assert [t for t, _, _ in publisher.sent] == ["t-bulk", "t-normal"]
    assert publisher.sent[0][1] == b'{"event_key":"k"}'
    assert publisher.sent[0][2] == {"lane": "bulk", "event_key": "k"}
    assert router.counts == {"high": 0, "normal": 1, "bulk": 1, "unroutable": 0}


def test_a_failed_republish_is_redelivered_and_a_bad_push_refused():
    assert _router(_Publisher(fail=True)).handle_push(_push({"lane": "high"})) == 503
    assert _router(_Publisher()).handle_push(b"not json") == 400
