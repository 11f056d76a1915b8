"""Static egress: the private functions reach WordPress from a few fixed addresses.

Direct VPC egress puts the deliver and rotate instances straight into a
subnet (no Serverless VPC Access connector VMs to pay for and size), all of
their traffic is routed into the VPC, and Cloud NAT translates it to
addresses reserved here with ``MANUAL_ONLY`` allocation, so the set never
changes behind the WordPress allowlist's back. Private Google Access keeps
calls to Google APIs (Firestore, Storage, Secret Manager) off the NAT.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
from pulumi_gcp import compute

from infra.base import Component

__all__ = ["Egress", "EgressArgs"]


@dataclass(frozen=True)
class EgressArgs:
    """Where the egress lives and how many addresses it owns."""

    project: str
    region: str
    prefix: str
    subnet_cidr: str
    ip_count: int
    min_ports_per_vm: int


class Egress(Component):
    """VPC, subnet, Cloud Router, reserved addresses and a MANUAL_ONLY Cloud NAT."""

    def __init__(
        self,
        name: str,
        args: EgressArgs,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("Egress", name, depends_on, opts)
        self.network = compute.Network(
            "vpc",
            project=args.project,
            name=f"{args.prefix}-vpc",
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            description="hookpress: egress of the private functions through Cloud NAT",
            opts=self.child(),
        )
        self.subnet = compute.Subnetwork(
            "egress-subnet",
            project=args.project,
            name=f"{args.prefix}-egress",
            region=args.region,
            network=self.network.id,
            ip_cidr_range=args.subnet_cidr,
            private_ip_google_access=True,
            opts=self.child(),
        )
        self.router = compute.Router(
            "router",
            project=args.project,
            name=f"{args.prefix}-router",
            region=args.region,
            network=self.network.id,
            opts=self.child(),
        )
        self.addresses = [
            compute.Address(
                f"egress-ip-{index}",
                project=args.project,
                name=f"{args.prefix}-egress-{index}",
                region=args.region,
                address_type="EXTERNAL",
                network_tier="PREMIUM",
                description="hookpress: a Cloud NAT address WordPress allowlists",
                # Losing one would silently break the allowlist; delete it on purpose only.
                opts=self.child(protect=True),
            )
            for index in range(args.ip_count)
        ]
        self.nat = compute.RouterNat(
            "nat",
            project=args.project,
            name=f"{args.prefix}-nat",
            region=args.region,
            router=self.router.name,
            nat_ip_allocate_option="MANUAL_ONLY",
            nat_ips=[address.self_link for address in self.addresses],
            source_subnetwork_ip_ranges_to_nat="LIST_OF_SUBNETWORKS",
            subnetworks=[
                compute.RouterNatSubnetworkArgs(
                    name=self.subnet.id,
                    source_ip_ranges_to_nats=["ALL_IP_RANGES"],
                )
            ],
            min_ports_per_vm=args.min_ports_per_vm,
            log_config=compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
            opts=self.child(),
        )
        self.egress_ips: pulumi.Output[list[str]] = pulumi.Output.all(
            *[address.address for address in self.addresses]
        )
        self.register_outputs(
            {
                "network": self.network.name,
                "subnet": self.subnet.name,
                "egressIps": self.egress_ips,
            }
        )
