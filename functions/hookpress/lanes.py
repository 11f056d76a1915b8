"""Fair lanes: one push subscription per lane, each with its own share of WordPress.

A source sets ``lane: high | normal | bulk`` (default ``normal``); the ingress
puts it on each message as the ``lane`` attribute (:func:`hookpress.events.
message_attributes`). Each lane in use is its own push subscription on the
``events`` topic, filtered on that attribute, pushing to its own deliver
service whose instances × concurrency is the lane's share of
``wpConcurrencyCap``: a flood on a bulk source fills the bulk lane's share and
queues in its subscription, while high sources keep their own deliver
capacity. Pub/Sub evaluates a subscription's filter when a message is
published; a message matching no subscription is acknowledged for it, so the
``normal`` filter is the complement of the others: every message lands in
exactly one lane, including one without the attribute.

Filter syntax: https://cloud.google.com/pubsub/docs/subscription-message-filter
(filters are immutable once the subscription exists: changing a lane's
filter replaces its subscription).

This module owns the rule; the Pulumi program (``infra/``) and the local
stack both call it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = [
    "DELIVER_CONCURRENCY",
    "LANES",
    "lane_filter",
    "lane_instances",
    "lane_shares",
    "lanes_in_use",
]

LANES = ("high", "normal", "bulk")

#: Pushes one deliver instance serves at once unless the stack's ``deliverConcurrency``
#: says otherwise (infra/config/functions.py): one, so an instance is gunicorn's sync
#: worker (gunicorn runs its threaded worker only for THREADS > 1).
DELIVER_CONCURRENCY = 1


def lanes_in_use(lanes: Iterable[str]) -> tuple[str, ...]:
    """The lanes that get a subscription: ``normal`` always, and every lane a source names."""
    used = set(lanes) | {"normal"}
    return tuple(lane for lane in LANES if lane in used)


def lane_filter(lane: str, in_use: Iterable[str]) -> str | None:
    """The subscription filter of ``lane`` (None: a single lane needs none)."""
    used = lanes_in_use(in_use)
    if used == ("normal",):
        return None
    if lane != "normal":
        return f'attributes.lane = "{lane}"'
    others = " AND ".join(f'attributes.lane != "{o}"' for o in used if o != "normal")
    return f"NOT attributes:lane OR ({others})"


def lane_shares(cap: int, concurrency: int, in_use: Iterable[str]) -> Mapping[str, int]:
    """Each lane's share of ``cap`` concurrent deliveries, in multiples of ``concurrency``.

    ``high`` and ``bulk`` get a quarter each (at least one instance's worth),
    ``normal`` the rest; the shares add up to ``cap`` exactly. ValueError when
    the cap cannot give every lane in use at least one instance.
    """
    used = lanes_in_use(in_use)
    slots = cap // concurrency
    if cap % concurrency or slots < len(used):
        raise ValueError(
            f"a WordPress cap of {cap} in units of {concurrency} cannot give each of the "
            f"{len(used)} lanes in use ({', '.join(used)}) an instance"
        )
    shares = {lane: max(1, slots // 4) for lane in used if lane != "normal"}
    shares["normal"] = slots - sum(shares.values())
    if shares["normal"] < 1:
        raise ValueError(f"a WordPress cap of {cap} leaves the normal lane nothing")
    return {lane: shares[lane] * concurrency for lane in used}


def lane_instances(cap: int, concurrency: int, in_use: Iterable[str]) -> Mapping[str, int]:
    """Each lane's deliver instances: its share of ``cap`` over ``concurrency``.

    The Pulumi program makes this each lane's max instances; the local stack runs as
    many gunicorn workers (separate processes, nothing shared, as instances are).
    """
    shares = lane_shares(cap, concurrency, in_use)
    return {lane: share // concurrency for lane, share in shares.items()}
