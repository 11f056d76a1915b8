"""The functions' sizing, ingress's limits, deliver's WordPress and its push subscription.

Cloud Run's rules on CPU, memory and concurrency are checked here, before
Google refuses them halfway through an update; the limits a function reads
itself (body size, tolerance, WordPress timeouts, the pause switch) use that
function's own defaults and bounds (``hookpress.config_rules``).
"""

from __future__ import annotations

import re

from hookpress import config_rules as rules
from hookpress.lanes import DELIVER_CONCURRENCY
from infra.config.model import (
    ConfigError,
    DeliverConfig,
    FunctionSizing,
    IngressConfig,
    PushConfig,
    Source,
)
from infra.config.reader import Reader

__all__ = ["read_deliver", "read_ingress", "read_push"]

_MEMORY = re.compile(r"^[1-9][0-9]*(Mi|Gi)$")
# Cloud Run functions accept these CPU values; below 1 a function serves one request at a time.
_CPUS = {"0.083": 0.083, "0.167": 0.167, "0.333": 0.333, "0.5": 0.5, "0.583": 0.583}
_CPUS.update({str(n): float(n) for n in (1, 2, 4, 6, 8)})


def read_ingress(r: Reader) -> IngressConfig:
    """The public ingress: its sizing and the request limits it enforces."""
    concurrency = r.integer("ingressConcurrency", 32, 1, 1000)
    memory = _memory(r, "ingressMemory", "512Mi")
    max_body = r.knob("maxBodyBytes", rules.MAX_BODY_BYTES)
    _fits(r, concurrency, memory, max_body)
    lowest = r.integer("ingressMinInstances", 0, 0, 100)
    highest = r.integer("ingressMaxInstances", 100, 1, 1000)
    r.not_above("ingressMinInstances", lowest, "ingressMaxInstances", highest)
    return IngressConfig(
        sizing=FunctionSizing(
            min_instances=lowest,
            max_instances=highest,
            concurrency=concurrency,
            memory=memory,
            cpu=_cpu(r, "ingressCpu", "1", concurrency, memory),
            timeout_s=r.integer("ingressTimeoutS", 60, 1, 3600),
        ),
        max_body_bytes=max_body,
        timestamp_tolerance_s=r.knob("timestampToleranceS", rules.TIMESTAMP_TOLERANCE_S),
    )


def read_deliver(r: Reader, prefix: str, sources: tuple[Source, ...]) -> DeliverConfig:
    """Deliver: the WordPress it posts to, how hard (the cap), and how long it may take."""
    cap = r.integer("wpConcurrencyCap", 8, 1, 1000)
    concurrency = r.integer("deliverConcurrency", DELIVER_CONCURRENCY, 1, 1000)
    if cap % concurrency:
        raise ConfigError(
            f"{r.key('wpConcurrencyCap')} ({cap}) must be a multiple of "
            f"{r.key('deliverConcurrency')} ({concurrency}), so that max instances "
            "times concurrency equals the cap WordPress is sized for."
        )
    timeout = r.integer("deliverTimeoutS", 60, 10, 600)
    memory = _memory(r, "deliverMemory", "512Mi")
    connect = r.knob("wpConnectTimeoutS", rules.WP_CONNECT_TIMEOUT_S)
    read = r.knob("wpReadTimeoutS", rules.WP_READ_TIMEOUT_S)
    if connect + read >= timeout:
        raise ConfigError(
            f"{r.key('wpConnectTimeoutS')} + {r.key('wpReadTimeoutS')} ({connect + read:g} s) "
            f"must be shorter than {r.key('deliverTimeoutS')} ({timeout} s), or the "
            "function is killed before it can answer Pub/Sub."
        )
    deliver = DeliverConfig(
        sizing=FunctionSizing(
            min_instances=0,
            max_instances=cap // concurrency,
            concurrency=concurrency,
            memory=memory,
            cpu=_cpu(r, "deliverCpu", "1" if concurrency > 1 else "0.5", concurrency, memory),
            timeout_s=timeout,
        ),
        wp_base_url=_url(r, "wpBaseUrl"),
        wp_user=r.required(
            "wpUser", "the WordPress user the ingest application password belongs to"
        ),
        wp_app_password_secret_id=r.text("wpAppPasswordSecretId", f"{prefix}-wp-app-password")
        or f"{prefix}-wp-app-password",
        wp_concurrency_cap=cap,
        wp_connect_timeout_s=connect,
        wp_read_timeout_s=read,
        paused=r.knob("pauseDelivery", rules.PAUSE_WP_DELIVERY),
    )
    if not rules.SECRET_ID.match(deliver.wp_app_password_secret_id):
        raise ConfigError(
            f"{r.key('wpAppPasswordSecretId')} must be a secret id (letters, digits, '-', '_')."
        )
    if deliver.wp_app_password_secret_id in {s.secret_id for s in sources}:
        raise ConfigError(
            f"{r.key('wpAppPasswordSecretId')} is also a source's secret: they must differ."
        )
    return deliver


def read_push(r: Reader, deliver_timeout_s: int) -> PushConfig:
    """The push subscription to deliver: its ack deadline, retry backoff and dead-letter policy."""
    ack = r.integer("ackDeadlineS", deliver_timeout_s, 10, 600)
    if ack < deliver_timeout_s:
        raise ConfigError(
            f"{r.key('ackDeadlineS')} ({ack} s) must be at least {r.key('deliverTimeoutS')} "
            f"({deliver_timeout_s} s), or Pub/Sub redelivers messages deliver is still working on."
        )
    min_backoff = r.integer("retryMinBackoffS", 10, 10, 600)
    max_backoff = r.integer("retryMaxBackoffS", 600, 10, 600)
    r.not_above("retryMinBackoffS", min_backoff, "retryMaxBackoffS", max_backoff, " s")
    return PushConfig(
        ack_deadline_s=ack,
        min_backoff_s=min_backoff,
        max_backoff_s=max_backoff,
        max_delivery_attempts=r.integer("deadLetterMaxAttempts", 5, 5, 100),
    )


def _memory(r: Reader, name: str, default: str) -> str:
    """A memory size Cloud Run accepts: "The maximum amount of memory you can configure
    is 32 gibibyte (32 Gi)" (https://cloud.google.com/run/docs/configuring/services/memory-limits)."""
    value = r.text(name, default) or default
    if not _MEMORY.match(value):
        raise ConfigError(f"{r.key(name)} must be a size such as 512Mi or 1Gi, got {value[:32]!r}.")
    if _mebibytes(value) > 32 * 1024:
        raise ConfigError(f"{r.key(name)} is {value}, more than Cloud Run's 32Gi.")
    return value


def _mebibytes(memory: str) -> int:
    return int(memory[:-2]) * (1024 if memory.endswith("Gi") else 1)


def _fits(r: Reader, concurrency: int, memory: str, max_body: int) -> None:
    """Refuse an ingress whose instance cannot hold ``concurrency`` requests of the largest
    body it accepts at once.

    "Cloud Run instances that exceed their allowed memory limit are terminated"
    (https://cloud.google.com/run/docs/configuring/services/memory-limits), and
    every request in flight on that instance fails with it: a burst of large
    bodies would become a burst of 5xx and provider retries.
    """
    need = (
        rules.INGRESS_BASE_MIB + concurrency * rules.INGRESS_BYTES_PER_BODY_BYTE * max_body / 2**20
    )
    if need > _mebibytes(memory):
        raise ConfigError(
            f"{r.key('ingressConcurrency')} is {concurrency} and {r.key('maxBodyBytes')} "
            f"{max_body}: at about {rules.INGRESS_BYTES_PER_BODY_BYTE} bytes held per body byte, "
            f"{concurrency} requests of the largest body need about {need:.0f} MiB with the "
            f"process, more than {r.key('ingressMemory')} ({memory}). Raise the memory, or "
            "lower the concurrency or the body limit."
        )


#: (MiB above which, the least CPU): "1 vCPU: up to 4 GiB, 2 vCPU: up to 8 GiB, 4 vCPU: 2 to
#: 16 GiB, 6 vCPU: 4 to 24 GiB, 8 vCPU: 4 to 32 GiB", and below 1 vCPU "a minimum of 0.5
#: CPU is needed to set a memory limit greater than 512MiB", "of 1 CPU ... greater than 1GiB"
#: (https://cloud.google.com/run/docs/configuring/services/cpu)
_CPU_FOR_MEMORY = ((24 * 1024, 8.0), (16 * 1024, 6.0), (8 * 1024, 4.0), (4 * 1024, 2.0),
                   (1024, 1.0), (512, 0.5))  # fmt: skip
#: (CPU from which, the least MiB) of the same table: 4 vCPU from 2 GiB, 6 and 8 from 4 GiB
_MEMORY_FOR_CPU = ((6.0, 4 * 1024), (4.0, 2 * 1024))


def _cpu(r: Reader, name: str, default: str, concurrency: int, memory: str = "512Mi") -> str:
    """A CPU value Cloud Run accepts with this concurrency and memory.

    Below 1 vCPU, Cloud Run requires a concurrency of 1; and each CPU value has
    its range of memory (:data:`_CPU_FOR_MEMORY`, :data:`_MEMORY_FOR_CPU`;
    https://cloud.google.com/run/docs/configuring/services/cpu#cpu-memory).
    """
    value = r.text(name, default) or default
    if value not in _CPUS:
        raise ConfigError(
            f"{r.key(name)} must be one of {', '.join(sorted(_CPUS, key=_CPUS.__getitem__))}, "
            f"got {value[:32]!r}."
        )
    cpu = _CPUS[value]
    if concurrency > 1 and cpu < 1:
        raise ConfigError(
            f"{r.key(name)} is {value}, but a function serving {concurrency} concurrent "
            "requests needs at least 1 CPU: raise the CPU or set the concurrency to 1."
        )
    mib = _mebibytes(memory)
    needed = next((c for above, c in _CPU_FOR_MEMORY if mib > above), 0.0)
    if cpu < needed:
        raise ConfigError(
            f"{r.key(name)} is {value}, but Cloud Run needs at least {needed:g} CPU for "
            f"{memory} of memory: raise the CPU or lower the memory."
        )
    least = next((m for c, m in _MEMORY_FOR_CPU if cpu >= c), 0)
    if mib < least:
        raise ConfigError(
            f"{r.key(name)} is {value}, but Cloud Run needs at least {least // 1024}Gi of "
            f"memory for {value} CPU, and the memory is {memory}: lower the CPU or raise "
            "the memory."
        )
    return value


def _url(r: Reader, name: str) -> str:
    value = r.required(name, "the WordPress REST base URL, e.g. https://example.com/wp-json")
    if not re.match(r"^https://[^/\s?#@]+(/[^\s?#]*)?$", value):
        raise ConfigError(
            f"{r.key(name)} must be an https:// URL without credentials, query or fragment, "
            f"got {value[:64]!r}."
        )
    return value.rstrip("/")
