"""Static egress: how deliver and rotate reach WordPress, the subnet, the NAT addresses."""

from __future__ import annotations

import ipaddress
import re

from infra.config.model import EGRESS_PATHS, ConfigError, EgressPath, NetworkConfig
from infra.config.reader import Reader

__all__ = ["read_network"]

_CIDR = re.compile(r"^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})/(\d{1,2})$")
# Every subnet loses four addresses to Google
# (https://cloud.google.com/vpc/docs/subnets#unusable-ip-addresses-in-every-subnet).
_RESERVED_PER_SUBNET = 4


def read_network(r: Reader, vpc_instances: int) -> NetworkConfig:
    """The egress path, its subnet sized for ``vpc_instances``, the NAT addresses and ports."""
    path = r.text("egressPath", "connector") or "connector"
    if path not in EGRESS_PATHS:
        raise ConfigError(f"{r.key('egressPath')} must be connector or direct, got {path[:32]!r}.")
    egress_path: EgressPath = "direct" if path == "direct" else "connector"
    connector_min = r.integer("connectorMinInstances", 2, 2, 9)
    connector_max = r.integer("connectorMaxInstances", 3, 3, 10)
    if connector_max <= connector_min:
        raise ConfigError(
            f"{r.key('connectorMaxInstances')} ({connector_max}) must be larger than "
            f"{r.key('connectorMinInstances')} ({connector_min})."
        )
    return NetworkConfig(
        subnet_cidr=_egress_subnet(r, egress_path, vpc_instances),
        egress_ip_count=r.integer("egressIpCount", 1, 1, 16),
        nat_min_ports_per_vm=r.integer("natMinPortsPerVm", 64, 32, 65536),
        egress_path=egress_path,
        connector_min_instances=connector_min,
        connector_max_instances=connector_max,
    )


def _cidr(r: Reader, name: str, default: str) -> str:
    value = r.text(name, default) or default
    match = _CIDR.match(value)
    if (
        not match
        or any(int(octet) > 255 for octet in match.groups()[:4])
        or not 16 <= int(match.group(5)) <= 28
    ):
        raise ConfigError(
            f"{r.key(name)} must be an IPv4 range from /16 to /28, e.g. 10.8.0.0/26, "
            f"got {value[:32]!r}."
        )
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise ConfigError(
            f"{r.key(name)} {value} has host bits set: use the range's first address "
            f"({ipaddress.ip_network(value, strict=False)})."
        ) from None
    return value


def _egress_subnet(r: Reader, path: EgressPath, vpc_instances: int) -> str:
    """The egress subnet: a /28 of its own for a connector; /26 or larger for Direct VPC egress.

    A Serverless VPC Access connector takes a dedicated /28
    (https://cloud.google.com/vpc/docs/serverless-vpc-access#ip_address_ranges). Direct
    VPC egress reserves addresses 16 (a /28) at a time, uses twice as many as
    instances run, and Google requires the range to be /26 or larger
    (https://cloud.google.com/run/docs/configuring/vpc-direct-vpc#direct-vpc-ip-allocation).
    """
    name = "egressSubnetCidr"
    cidr = _cidr(r, name, "10.8.0.0/28" if path == "connector" else "10.8.0.0/26")
    prefix = int(cidr.rsplit("/", 1)[1])
    if path == "connector":
        if prefix != 28:
            raise ConfigError(
                f"{r.key(name)} is {cidr}, but a Serverless VPC Access connector needs a /28 "
                f"of its own (egressPath connector), e.g. 10.8.0.0/28."
            )
        return cidr
    if prefix > 26:
        raise ConfigError(
            f"{r.key(name)} is {cidr}, but Direct VPC egress needs /26 or larger "
            "(Google's minimum), e.g. 10.8.0.0/26."
        )
    needed = -(-2 * vpc_instances // 16) * 16
    usable = 2 ** (32 - prefix) - _RESERVED_PER_SUBNET
    if usable < needed:
        raise ConfigError(
            f"{r.key(name)} {cidr} has {usable} usable addresses, but Direct VPC egress needs "
            f"{needed} for {vpc_instances} instances (twice the instances, in blocks of 16): "
            "use a larger range."
        )
    return cidr
