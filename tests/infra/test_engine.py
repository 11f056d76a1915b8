"""The engine's rules that ``pulumi.runtime.set_mocks`` does not apply, applied to the program.

The real engine refuses a program that registers one URN twice ("Duplicate
resource URN"), that depends on or parents to something never registered, and
``pulumi preview`` cannot show a resource that only exists once an Output is
known. The harness's :class:`EngineMonitor` forms URNs the engine's way and
records each of those; these tests hold every configuration we ship to them.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from infra_harness import (
    BASE_CONFIG,
    SECRET_KEYS,
    EngineReport,
    Graph,
    engine_urn,
    run_program,
)

CONFIGS = {
    "base": {},
    "direct-vpc-egress": {
        "hookpress:egressPath": "direct",
        "hookpress:egressSubnetCidr": "10.8.0.0/26",
    },
    "no-rotation": {"hookpress:wpPasswordRotationDays": "0"},
    "no-smoke-no-values": {
        "hookpress:smokeSource": "false",
        "hookpress:manageSecretValues": "false",  # pragma: allowlist secret
    },
    "existing-firestore": {"hookpress:createFirestoreDatabase": "false"},
}


def _assert_engine_accepts(report: EngineReport) -> None:
    repeats = [urn for urn, n in Counter(report.urns).items() if n > 1]
    assert not repeats, "the engine refuses duplicate URNs:\n  " + "\n  ".join(repeats)
    assert not report.duplicate_urns
    assert not report.unregistered_references, report.unregistered_references
    assert not report.created_in_apply, report.created_in_apply


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def configured(request, functions_root: Path) -> Graph:
    config = {**BASE_CONFIG, **CONFIGS[request.param]}
    return run_program(config, functions_root, secret_keys=SECRET_KEYS)


def test_engine_urn_follows_the_whole_parent_type_chain() -> None:
    """The fixture's URN rule itself: the parent's full type chain, the root stack left out."""
    stack = "urn:pulumi:test::hookpress::pulumi:pulumi:Stack::hookpress-test"
    component = engine_urn("test", "hookpress", stack, "hookpress:infra:CloudFunction", "deliver")
    assert component == "urn:pulumi:test::hookpress::hookpress:infra:CloudFunction::deliver"
    nested = engine_urn("test", "hookpress", component, "hookpress:infra:Inner", "x")
    leaf = engine_urn("test", "hookpress", nested, "gcp:pubsub/topic:Topic", "t")
    assert leaf == (
        "urn:pulumi:test::hookpress::"
        "hookpress:infra:CloudFunction$hookpress:infra:Inner$gcp:pubsub/topic:Topic::t"
    )


def test_the_fixture_catches_a_repeated_child_name(functions_root: Path) -> None:
    """Two components naming a child the same way: the monitor records the repeat."""
    import pulumi
    from infra_harness import Recorder, set_engine_mocks

    class Box(pulumi.ComponentResource):
        def __init__(self, name: str) -> None:
            super().__init__("test:index:Box", name)
            pulumi.CustomResource(
                "test:index:Thing", "thing", {}, pulumi.ResourceOptions(parent=self)
            )

    recorder = Recorder()
    monitor = set_engine_mocks(recorder)

    @pulumi.runtime.test
    def go() -> None:
        Box("a")
        Box("b")

    go()
    assert monitor.report.duplicate_urns == [
        "urn:pulumi:test::hookpress::test:index:Box$test:index:Thing::thing"
    ]


def test_every_urn_is_unique(configured: Graph) -> None:
    _assert_engine_accepts(configured.engine)
    assert len(configured.engine.urns) == len(configured.resources)


def test_children_are_named_after_their_component(configured: Graph) -> None:
    names = {r.urn: r.name for r in configured.engine.registrations}
    for reg in configured.engine.registrations:
        if reg.parent in names:
            assert reg.name.startswith(names[reg.parent] + "-"), (reg.urn, names[reg.parent])


def test_every_dependency_and_parent_is_registered_first(configured: Graph) -> None:
    seen: set[str] = set()
    for reg in configured.engine.registrations:
        for dep in reg.dependencies:
            assert dep in seen, f"{reg.urn} depends on {dep}, not registered before it"
        seen.add(reg.urn)


def test_preview_declares_exactly_what_up_creates(functions_root: Path) -> None:
    """With every computed output unknown (a fresh stack's preview), the same URNs register.

    A resource created inside an apply, i.e. named or counted after an Output,
    would be missing from the preview; one created from config alone is not.
    """
    up = run_program(BASE_CONFIG, functions_root, secret_keys=SECRET_KEYS)
    preview = run_program(BASE_CONFIG, functions_root, secret_keys=SECRET_KEYS, preview=True)
    _assert_engine_accepts(preview.engine)
    assert sorted(preview.engine.urns) == sorted(up.engine.urns)


def test_no_resource_is_created_inside_an_apply(configured: Graph) -> None:
    assert configured.engine.created_in_apply == []
