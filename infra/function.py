"""One Cloud Run function (gen2): its archive, its service, who may invoke it.

Adding a function is a :class:`FunctionSpec` and a service account: the
archive (function folder + shared core, named by content hash), the build
identity, sizing, VPC egress and invoker grants all come from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pulumi
from pulumi_gcp import cloudfunctionsv2, cloudrunv2, storage

from infra import archive
from infra.base import Built
from infra.config import FunctionSizing
from infra.network import VpcAccess

__all__ = ["RUNTIME", "CloudFunction", "CloudFunctionArgs", "FunctionSpec"]

RUNTIME = "python312"
PUBLIC = "allUsers"


@dataclass(frozen=True)
class FunctionSpec:
    """What a function is: its folder under functions/, entry point and exposure."""

    short_name: str
    entry_point: str
    description: str
    public: bool = False
    vpc_egress: bool = False


@dataclass(frozen=True)
class CloudFunctionArgs:
    """Everything one deployed function needs."""

    spec: FunctionSpec
    project: str
    region: str
    name: str
    source_dir: Path
    core_dir: Path
    sizing: FunctionSizing
    service_account_email: pulumi.Input[str]
    build_service_account: pulumi.Input[str]
    source_bucket: pulumi.Input[str]
    docker_repository: pulumi.Input[str]
    environment: Mapping[str, pulumi.Input[str]]
    labels: Mapping[str, str]
    # The Cloud Run service URL in its deterministic form (Settings.function_url):
    # where private functions are called, and the audience their callers sign for.
    service_url: str
    vpc: VpcAccess | None = None
    # Label -> IAM member allowed to invoke the function (besides allUsers when public).
    invokers: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)


class CloudFunction(Built[CloudFunctionArgs]):
    """The archive object, the gen2 function and its ``roles/run.invoker`` members."""

    KIND = "CloudFunction"

    def build(self, args: CloudFunctionArgs) -> None:
        spec = args.spec
        if spec.vpc_egress and args.vpc is None:
            raise ValueError(f"function {spec.short_name} asks for VPC egress but got no VPC")
        self.files = archive.collect(args.source_dir, args.core_dir)
        self.archive_name = archive.object_name(spec.short_name, self.files)
        self.source = self.declare(storage.BucketObject, "source")(
            bucket=args.source_bucket,
            name=self.archive_name,
            source=archive.asset_archive(self.files),
            content_type="application/zip",
        )

        sizing = args.sizing
        vpc = args.vpc if spec.vpc_egress else None
        direct = vpc is not None and vpc.path == "direct"
        connector = vpc is not None and vpc.path == "connector"
        self.function = self.declare(cloudfunctionsv2.Function, "function")(
            project=args.project,
            location=args.region,
            name=args.name,
            description=spec.description,
            labels=dict(args.labels),
            build_config=cloudfunctionsv2.FunctionBuildConfigArgs(
                runtime=RUNTIME,
                entry_point=spec.entry_point,
                service_account=args.build_service_account,
                docker_repository=args.docker_repository,
                automatic_update_policy=cloudfunctionsv2.FunctionBuildConfigAutomaticUpdatePolicyArgs(),  # type: ignore[no-untyped-call]  # no fields: its presence turns it on
                source=cloudfunctionsv2.FunctionBuildConfigSourceArgs(
                    storage_source=cloudfunctionsv2.FunctionBuildConfigSourceStorageSourceArgs(
                        bucket=args.source_bucket,
                        object=self.source.name,
                    )
                ),
            ),
            service_config=cloudfunctionsv2.FunctionServiceConfigArgs(
                service_account_email=args.service_account_email,
                ingress_settings="ALLOW_ALL" if spec.public else "ALLOW_INTERNAL_ONLY",
                all_traffic_on_latest_revision=True,
                min_instance_count=sizing.min_instances,
                max_instance_count=sizing.max_instances,
                max_instance_request_concurrency=sizing.concurrency,
                available_memory=sizing.memory,
                available_cpu=sizing.cpu,
                timeout_seconds=sizing.timeout_s,
                environment_variables=dict(args.environment),
                vpc_connector=vpc.connector if vpc is not None and connector else None,
                vpc_connector_egress_settings="ALL_TRAFFIC" if connector else None,
                direct_vpc_egress="VPC_EGRESS_ALL_TRAFFIC" if direct else None,
                direct_vpc_network_interfaces=[
                    cloudfunctionsv2.FunctionServiceConfigDirectVpcNetworkInterfaceArgs(
                        network=vpc.network, subnetwork=vpc.subnetwork
                    )
                ]
                if vpc is not None and direct
                else None,
            ),
        )

        members: dict[str, pulumi.Input[str]] = dict(args.invokers)
        if spec.public:
            members["public"] = PUBLIC
        self.invokers = [
            # Gen2 functions are Cloud Run services of the same name; invocation is
            # Cloud Run's run.invoker on that service, nothing project-wide.
            self.declare(cloudrunv2.ServiceIamMember, f"invoker-{label}")(
                project=args.project,
                location=args.region,
                name=self.function.name,
                role="roles/run.invoker",
                member=member,
            )
            for label, member in sorted(members.items())
        ]

        # The cloudfunctions.net URL Google returns (the public ingress's address),
        # and the run.app one private functions are called at.
        self.url: pulumi.Output[str] = self.function.url
        self.service_url = args.service_url
        self.function_name = args.name
        self.register_outputs(
            {"url": self.url, "serviceUrl": self.service_url, "archive": self.archive_name}
        )
