"""Run the Pulumi program under ``pulumi.runtime.set_mocks`` and record the resource graph.

(A module of its own, not conftest.py: test modules import these names, and
``conftest`` is an ambiguous module name once several test folders have one.)

The mocks stand in for the Google provider: they echo each resource's inputs
and add the outputs the real provider computes (service-account e-mails,
function URLs, topic ids, reserved addresses), in the formats Google uses.
Tests then assert on :class:`Graph`, a flat list of every registered
resource with its inputs (Pulumi's camelCase wire names) and outputs.

``pulumi.runtime.set_mocks`` does not apply the engine's rules: its monitor
forms a child's URN from the last type of its parent only and overwrites a
repeated URN silently. :class:`EngineMonitor` replaces it and records what
the engine would refuse instead: every URN formed as the engine forms it
(``urn:pulumi:<stack>::<project>::<parent type chain>$<type>::<name>``, the
root stack's type left out), every repeat, every ``depends_on``/parent that is
not a registered resource, and every resource constructed inside an
``apply`` callback (its existence, and so its name, would depend on an
Output: ``pulumi preview`` could not show it).
"""

from __future__ import annotations

import importlib
import json
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor

REPO = Path(__file__).resolve().parents[2]
for _path in (REPO, REPO / "functions"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROJECT = "hookpress-test"
PROJECT_NUMBER = "123456789012"
ROOT_STACK_TYPE = "pulumi:pulumi:Stack"
REGION = "europe-west1"
FUNCTIONS = ("ingress", "deliver", "reconcile", "rotate")

# Values the stack holds as secrets: they must only ever reach Secret Manager.
WP_PASSWORD = "wp-app-password-SENTINEL-7f3a"
SOURCE_SECRETS = {
    "stripe": "whsec_stripe-SENTINEL-19bc",
    "github": "github-SENTINEL-88d1",
    "openai": "whsec_openai-SENTINEL-c0de",
}
SECRET_VALUES = (WP_PASSWORD, *SOURCE_SECRETS.values())

BASE_CONFIG: dict[str, str] = {
    "gcp:project": PROJECT,
    "gcp:region": REGION,
    "hookpress:sources": json.dumps(
        {
            "stripe": {"scheme": "stripe"},
            "github": {"scheme": "github"},
            "openai": {"scheme": "standard-webhooks", "secret": "openai-signing"},
        }
    ),
    "hookpress:wpBaseUrl": "https://wp.example.com/wp-json/",
    "hookpress:wpUser": "hookpress-ingest",
    "hookpress:egressIpCount": "2",
    "hookpress:rawColdAfterDays": "30",
    "hookpress:alertEmails": json.dumps(["ops@example.com"]),
    "hookpress:manageSecretValues": "true",
    "hookpress:wpAppPassword": WP_PASSWORD,
    "hookpress:sourceSecrets": json.dumps(SOURCE_SECRETS),
}
SECRET_KEYS = ["hookpress:wpAppPassword", "hookpress:sourceSecrets"]


@dataclass
class Res:
    """One registered resource: Pulumi type token, logical name, inputs and mocked outputs."""

    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    custom: bool
    id: str | None = None

    def get(self, path: str, default: Any = None) -> Any:
        """A nested value by dotted path over the inputs, e.g. ``serviceConfig.ingressSettings``."""
        value: Any = self.inputs
        for part in path.split("."):
            if isinstance(value, list):
                value = value[int(part)] if part.isdigit() and int(part) < len(value) else None
            elif isinstance(value, dict):
                value = value.get(part)
            else:
                return default
            if value is None:
                return default
        return _unwrap(value)

    def text(self) -> str:
        """The inputs as one JSON string, for "does this appear anywhere" checks."""
        return json.dumps(self.inputs, default=repr, sort_keys=True)


@dataclass
class Graph:
    """Everything a program run registered, and its stack outputs."""

    resources: list[Res]
    outputs: dict[str, Any] = field(default_factory=dict)
    engine: EngineReport = field(default_factory=lambda: EngineReport())
    calls: list[str] = field(default_factory=list)  # invoke tokens, in order

    def of(self, type_suffix: str) -> list[Res]:
        """Resources whose type token ends with ``type_suffix`` (e.g. ``pubsub/topic:Topic``)."""
        return [r for r in self.resources if r.type.endswith(type_suffix)]

    def one(self, type_suffix: str, **match: Any) -> Res:
        """The single resource of that type whose inputs match ``match`` (dotted keys as ``__``)."""
        found = [
            r
            for r in self.of(type_suffix)
            if all(r.get(k.replace("__", ".")) == v for k, v in match.items())
        ]
        assert len(found) == 1, f"expected one {type_suffix} matching {match}, found {len(found)}"
        return found[0]

    def function(self, short: str) -> Res:
        """The Cloud Run function deployed for ``functions/<short>``."""
        return self.one("cloudfunctionsv2/function:Function", name=f"hookpress-{short}")

    def registration(self, type_suffix: str, name: str) -> Registration:
        """How the engine saw the resource of that type and logical name."""
        found = [
            r for r in self.engine.registrations if r.type.endswith(type_suffix) and r.name == name
        ]
        assert len(found) == 1, f"expected one {type_suffix} named {name}, found {len(found)}"
        return found[0]

    def waits_for(self, type_suffix: str, name: str) -> set[str]:
        """URNs the resource waits for, directly or through what it waits for."""
        by_urn = {r.urn: r for r in self.engine.registrations}
        todo = list(self.registration(type_suffix, name).dependencies)
        seen: set[str] = set()
        while todo:
            urn = todo.pop()
            if urn in seen:
                continue
            seen.add(urn)
            if urn in by_urn:
                todo.extend(by_urn[urn].dependencies)
        return seen

    def account_email(self, role: str) -> str:
        """The e-mail of the service account ``hookpress-<role>``."""
        account = self.one("serviceaccount/account:Account", accountId=f"hookpress-{role}")
        return str(account.outputs["email"])


_SECRET_SIG = "4dabf18193072939515e22adb298388d"
SLACK_TOKEN = "xoxb-SENTINEL-slack-7f3a"


def _unwrap(value: Any) -> Any:
    """Strip Pulumi's secret wrapper from mock inputs (the value inside is what was sent)."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            return _unwrap(value.get("value"))
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


@dataclass
class Registration:
    """One RegisterResource call as the engine sees it."""

    urn: str
    type: str
    name: str
    parent: str
    dependencies: list[str]
    custom: bool


@dataclass
class EngineReport:
    """What the real engine would have refused, and every URN it would have formed."""

    registrations: list[Registration] = field(default_factory=list)
    duplicate_urns: list[str] = field(default_factory=list)
    # (urn, "parent" or "depends_on", the URN it refers to)
    unregistered_references: list[tuple[str, str, str]] = field(default_factory=list)
    # "type::name" of resources constructed while an apply callback ran
    created_in_apply: list[str] = field(default_factory=list)

    @property
    def urns(self) -> list[str]:
        """Every URN, in registration order (repeats included)."""
        return [r.urn for r in self.registrations]


def _qualified_type(urn: str) -> str:
    """The type chain of a URN: ``urn:pulumi:stack::project::<this>::name``."""
    return urn.split("::")[2]


def engine_urn(stack: str, project: str, parent: str, type_: str, name: str) -> str:
    """A URN as the Pulumi engine forms it (resource.NewURN with the parent's qualified type)."""
    qualified = type_
    if parent:
        parent_type = _qualified_type(parent)
        if parent_type != ROOT_STACK_TYPE:
            qualified = f"{parent_type}${type_}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


class EngineMonitor(MockMonitor):
    """The mock monitor, with URNs formed and checked as the engine does."""

    def __init__(self, mocks: pulumi.runtime.Mocks, stack: str, project: str) -> None:
        super().__init__(mocks)
        self.stack, self.project = stack, project
        self.report = EngineReport()
        self._seen: set[str] = set()

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        return engine_urn(self.stack, self.project, parent, type_, name)

    def _registered(self, urn: str) -> bool:
        return urn in self._seen or _qualified_type(urn) == ROOT_STACK_TYPE

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type != ROOT_STACK_TYPE:
            report = self.report
            if urn in self._seen:
                report.duplicate_urns.append(urn)
            if request.parent and not self._registered(request.parent):
                report.unregistered_references.append((urn, "parent", request.parent))
            dependencies = list(request.dependencies)
            for deps in request.propertyDependencies.values():
                dependencies.extend(deps.urns)
            for dep in dependencies:
                if not self._registered(dep):
                    report.unregistered_references.append((urn, "depends_on", dep))
            report.registrations.append(
                Registration(
                    urn=urn,
                    type=request.type,
                    name=request.name,
                    parent=request.parent,
                    dependencies=sorted(set(dependencies)),
                    custom=bool(request.custom),
                )
            )
            self._seen.add(urn)
        return super().RegisterResource(request)


def _inside_apply() -> bool:
    """Whether the current call runs inside an Output.apply callback."""
    return any(
        frame.filename.replace("\\", "/").endswith("pulumi/output.py") and frame.name == "run"
        for frame in traceback.extract_stack()
    )


@contextmanager
def _watch_apply_creations(report: EngineReport) -> Iterator[None]:
    """Record every resource constructed while an apply callback runs."""
    original = pulumi.Resource.__init__

    def init(self: pulumi.Resource, t: str, name: str, *args: Any, **kwargs: Any) -> None:
        if _inside_apply():
            report.created_in_apply.append(f"{t}::{name}")
        original(self, t, name, *args, **kwargs)

    pulumi.Resource.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        pulumi.Resource.__init__ = original  # type: ignore[method-assign]


class Recorder(pulumi.runtime.Mocks):
    """Mocks that compute provider outputs the way Google names things, and record everything.

    With ``unknown_outputs`` (a preview), every output the provider computes is
    unknown, as in ``pulumi preview`` of a fresh stack: only inputs are known.
    """

    def __init__(self, *, unknown_outputs: bool = False) -> None:
        self.resources: list[Res] = []
        self.calls: list[str] = []
        self._addresses = 0
        self.unknown_outputs = unknown_outputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict]:
        inputs = dict(args.inputs)
        out: dict[str, Any] = dict(inputs)
        project = inputs.get("project", PROJECT)
        typ = args.typ
        rid = f"{args.name}-id"
        if typ == "gcp:serviceaccount/account:Account":
            email = f"{inputs['accountId']}@{project}.iam.gserviceaccount.com"
            out |= {
                "email": email,
                "member": f"serviceAccount:{email}",
                "name": f"projects/{project}/serviceAccounts/{email}",
            }
            rid = out["name"]
        elif typ == "gcp:projects/serviceIdentity:ServiceIdentity":
            agent = inputs["service"].split(".")[0]
            email = f"service-{PROJECT_NUMBER}@gcp-sa-{agent}.iam.gserviceaccount.com"
            out |= {"email": email, "member": f"serviceAccount:{email}"}
        elif typ == "gcp:cloudfunctionsv2/function:Function":
            name, location = inputs["name"], inputs["location"]
            out["url"] = f"https://{location}-{project}.cloudfunctions.net/{name}"
            service = dict(inputs.get("serviceConfig", {}))
            # What Google returns: the hash-based URL (the deterministic one is in the
            # Cloud Run service's `urls`, see call()).
            service["uri"] = f"https://{name}-abcdefghij-ew.a.run.app"
            service["service"] = f"projects/{project}/locations/{location}/services/{name}"
            out["serviceConfig"] = service
            out["state"] = "ACTIVE"
            rid = f"projects/{project}/locations/{location}/functions/{name}"
        elif typ == "gcp:pubsub/topic:Topic":
            rid = f"projects/{project}/topics/{inputs['name']}"
        elif typ == "gcp:pubsub/subscription:Subscription":
            rid = f"projects/{project}/subscriptions/{inputs['name']}"
        elif typ == "gcp:secretmanager/secret:Secret":
            rid = f"projects/{project}/secrets/{inputs['secretId']}"
            out["name"] = rid
        elif typ == "gcp:artifactregistry/repository:Repository":
            rid = (
                f"projects/{project}/locations/{inputs['location']}/repositories/"
                f"{inputs['repositoryId']}"
            )
            out["name"] = inputs["repositoryId"]
        elif typ == "gcp:compute/address:Address":
            self._addresses += 1
            out["address"] = f"203.0.113.{self._addresses}"
            rid = f"projects/{project}/regions/{inputs['region']}/addresses/{inputs['name']}"
            out["selfLink"] = f"https://www.googleapis.com/compute/v1/{rid}"
        elif typ in {
            "gcp:compute/network:Network",
            "gcp:compute/subnetwork:Subnetwork",
            "gcp:compute/router:Router",
        }:
            kind = typ.rsplit(":", 1)[1].lower() + "s"
            scope = "global" if kind == "networks" else f"regions/{inputs.get('region')}"
            rid = f"projects/{project}/{scope}/{kind}/{inputs['name']}"
            out["selfLink"] = f"https://www.googleapis.com/compute/v1/{rid}"
        elif typ == "gcp:storage/bucketObject:BucketObject":
            out["mediaLink"] = f"https://storage.googleapis.com/{inputs['bucket']}/{inputs['name']}"
        elif typ == "gcp:vpcaccess/connector:Connector":
            rid = f"projects/{project}/locations/{inputs['region']}/connectors/{inputs['name']}"
        elif typ == "random:index/randomPassword:RandomPassword":
            out["result"] = "r" * int(inputs.get("length", 32))
        self.resources.append(
            Res(
                type=typ,
                name=args.name,
                inputs=_unwrap(inputs),
                outputs=out,
                custom=bool(args.custom),
                id=rid,
            )
        )
        if self.unknown_outputs:
            out = {k: (v if k in inputs else rpc.UNKNOWN) for k, v in out.items()}
            return "", out
        return rid, out

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list]:
        self.calls.append(args.token)
        if args.token == "gcp:secretmanager/getSecretVersion:getSecretVersion":
            # A secret the operator added with gcloud before `pulumi up`.
            return {"secretData": SLACK_TOKEN, "secret": args.args.get("secret")}, []
        if args.token == "gcp:organizations/getProject:getProject":
            project = args.args.get("projectId") or PROJECT
            return {"projectId": project, "number": PROJECT_NUMBER, "name": project}, []
        if args.token == "gcp:cloudrunv2/getService:getService":
            name, region = args.args["name"], args.args["location"]
            # Cloud Run lists the deterministic URL first, then the hash-based one.
            urls = [
                f"https://{name}-{PROJECT_NUMBER}.{region}.run.app",
                f"https://{name}-abcdefghij-ew.a.run.app",
            ]
            return {"name": name, "location": region, "urls": urls, "uri": urls[1]}, []
        return {}, []


def set_engine_mocks(
    recorder: Recorder, *, stack: str = "test", project: str = "hookpress", preview: bool = False
) -> EngineMonitor:
    """``pulumi.runtime.set_mocks`` with the engine's URN rules (:class:`EngineMonitor`)."""
    monitor = EngineMonitor(recorder, stack=stack, project=project)
    pulumi.runtime.set_mocks(
        recorder, project=project, stack=stack, preview=preview, monitor=monitor
    )
    return monitor


def run_program(
    config: Mapping[str, str],
    functions_root: Path,
    *,
    secret_keys: list[str] | None = None,
    preview: bool = False,
) -> Graph:
    """Run ``infra.__main__.main`` under mocks with ``config``; return the recorded graph.

    ``preview`` runs it as ``pulumi preview`` of a fresh stack does: computed
    outputs unknown, apply callbacks on them never run.
    """
    pulumi.runtime.set_all_config(dict(config), secret_keys or [])
    recorder = Recorder(unknown_outputs=preview)
    monitor = set_engine_mocks(recorder, preview=preview)
    program = importlib.import_module("infra.__main__")
    config_module = importlib.import_module("infra.config")
    captured: dict[str, Any] = {}

    @pulumi.runtime.test
    def go() -> pulumi.Output[Any]:
        outputs = program.main(config_module.load(), functions_root)
        return pulumi.Output.from_input(outputs).apply(captured.update)

    with _watch_apply_creations(monitor.report):
        go()
    return Graph(
        resources=recorder.resources, outputs=captured, engine=monitor.report, calls=recorder.calls
    )


def write_function(
    folder: Path, name: str, requirements: str = "functions-framework==3.10.2\n"
) -> None:
    """A minimal function folder: a real entry point importing the shared core."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "main.py").write_text(
        f'"""Fixture for {name}."""\n\n'
        "import functions_framework\n\n"
        "import hookpress.settings  # noqa: F401  # the core is bundled\n\n\n"
        "@functions_framework.http\n"
        f"def {name}(request):\n"
        '    return "ok"\n'
    )
    (folder / "requirements.txt").write_text(requirements)
