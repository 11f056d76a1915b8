"""Static egress: the private functions reach WordPress from a few fixed addresses.

deliver and rotate send all their traffic into a VPC, where Cloud NAT
translates it to addresses reserved here with ``MANUAL_ONLY`` allocation, so
the set never changes behind the WordPress allowlist's back. Private Google
Access keeps calls to Google APIs (Firestore, Storage, Secret Manager) off
the NAT.

Two ways lead a function into the VPC (``hookpress:egressPath``):

- ``connector`` (the default): a Serverless VPC Access connector in a /28 of
  its own. Google recommends it with Cloud NAT: "When using Cloud NAT with
  Direct VPC egress, you might experience cold start delays of 30 seconds or
  more on instance startup. For better startup performance, we recommend
  using a Serverless VPC Access connector with Cloud NAT"
  (https://cloud.google.com/run/docs/configuring/vpc-direct-vpc#limitations).
  deliver scales to zero, so every burst after a quiet spell starts instances.
- ``direct``: Direct VPC egress, no connector VMs to pay for, at the price of
  those start-up delays (a push that fails meanwhile is retried by Pub/Sub).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
from pulumi_gcp import compute, vpcaccess

from infra.base import Built, Child
from infra.config import EgressPath, NetworkConfig

__all__ = ["Egress", "EgressArgs", "VpcAccess"]


@dataclass(frozen=True)
class VpcAccess:
    """How a function enters the VPC: a connector's id, or a network and subnet (Direct VPC)."""

    path: EgressPath
    connector: pulumi.Input[str] | None = None
    network: pulumi.Input[str] | None = None
    subnetwork: pulumi.Input[str] | None = None


@dataclass(frozen=True)
class EgressArgs:
    """Where the egress lives, how functions enter it and how many addresses it owns."""

    project: str
    region: str
    prefix: str
    # The subnet, the address count, the NAT ports and the path: as configured.
    network: NetworkConfig


class Egress(Built[EgressArgs]):
    """VPC, subnet, (connector), Cloud Router, reserved addresses and a MANUAL_ONLY Cloud NAT."""

    KIND = "Egress"

    def build(self, args: EgressArgs) -> None:
        self.network = self.declare(compute.Network, "vpc")(
            project=args.project,
            name=f"{args.prefix}-vpc",
            auto_create_subnetworks=False,
            routing_mode="REGIONAL",
            description="hookpress: egress of the private functions through Cloud NAT",
        )
        self.subnet = self.declare(compute.Subnetwork, "subnet")(
            project=args.project,
            name=f"{args.prefix}-egress",
            region=args.region,
            network=self.network.id,
            ip_cidr_range=args.network.subnet_cidr,
            private_ip_google_access=True,
        )
        self.connector: vpcaccess.Connector | None = None
        if args.network.egress_path == "connector":
            self.connector = self.declare(vpcaccess.Connector, "connector")(
                project=args.project,
                region=args.region,
                name=f"{args.prefix}-egress",
                subnet=vpcaccess.ConnectorSubnetArgs(name=self.subnet.name),
                machine_type="e2-micro",
                min_instances=args.network.connector_min_instances,
                max_instances=args.network.connector_max_instances,
            )
            self.access = VpcAccess(path="connector", connector=self.connector.id)
        else:
            self.access = VpcAccess(
                path="direct", network=self.network.name, subnetwork=self.subnet.name
            )
        self.router = self.declare(compute.Router, "router")(
            project=args.project,
            name=f"{args.prefix}-router",
            region=args.region,
            network=self.network.id,
        )
        self.addresses = [
            self.declare(compute.Address, Child(f"ip-{index}", protect=True))(
                project=args.project,
                name=f"{args.prefix}-egress-{index}",
                region=args.region,
                address_type="EXTERNAL",
                network_tier="PREMIUM",
                description="hookpress: a Cloud NAT address WordPress allowlists",
                # Losing one would silently break the allowlist; delete it on purpose only.
            )
            for index in range(args.network.egress_ip_count)
        ]
        self.nat = self.declare(compute.RouterNat, "nat")(
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
            min_ports_per_vm=args.network.nat_min_ports_per_vm,
            log_config=compute.RouterNatLogConfigArgs(enable=True, filter="ERRORS_ONLY"),
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
