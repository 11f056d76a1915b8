"""Run the Pulumi program under ``pulumi.runtime.set_mocks`` and record the resource graph.

(A module of its own, not conftest.py: test modules import these names, and
``conftest`` is an ambiguous module name once several test folders have one.)

The mocks stand in for the Google provider: they echo each resource's inputs
and add the outputs the real provider computes (service-account e-mails,
function URLs, topic ids, reserved addresses), in the formats Google uses.
Tests then assert on :class:`Graph`, a flat list of every registered
resource with its inputs (Pulumi's camelCase wire names) and outputs.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi

REPO = Path(__file__).resolve().parents[2]
for _path in (REPO, REPO / "functions"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PROJECT = "hookpress-test"
PROJECT_NUMBER = "123456789012"
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

    def account_email(self, role: str) -> str:
        """The e-mail of the service account ``hookpress-<role>``."""
        account = self.one("serviceaccount/account:Account", accountId=f"hookpress-{role}")
        return str(account.outputs["email"])


_SECRET_SIG = "4dabf18193072939515e22adb298388d"


def _unwrap(value: Any) -> Any:
    """Strip Pulumi's secret wrapper from mock inputs (the value inside is what was sent)."""
    if isinstance(value, dict):
        if value.get(_SECRET_SIG) == "1b47061264138c4ac30d75fd1eb44270":
            return _unwrap(value.get("value"))
        return {k: _unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap(v) for v in value]
    return value


class Recorder(pulumi.runtime.Mocks):
    """Mocks that compute provider outputs the way Google names things, and record everything."""

    def __init__(self) -> None:
        self.resources: list[Res] = []
        self._addresses = 0

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
        return rid, out

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, list | None]:
        return {}, None


def run_program(
    config: Mapping[str, str],
    functions_root: Path,
    *,
    secret_keys: list[str] | None = None,
) -> Graph:
    """Run ``infra.__main__.main`` under mocks with ``config``; return the recorded graph."""
    pulumi.runtime.set_all_config(dict(config), secret_keys or [])
    recorder = Recorder()
    pulumi.runtime.set_mocks(recorder, project="hookpress", stack="test", preview=False)
    program = importlib.import_module("infra.__main__")
    config_module = importlib.import_module("infra.config")
    captured: dict[str, Any] = {}

    @pulumi.runtime.test
    def go() -> pulumi.Output[Any]:
        outputs = program.main(config_module.load(), functions_root)
        return pulumi.Output.from_input(outputs).apply(captured.update)

    go()
    return Graph(resources=recorder.resources, outputs=captured)


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
