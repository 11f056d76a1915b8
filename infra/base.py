"""What every hookpress component shares: its type token, child names and options, dependencies."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Concatenate, Generic, ParamSpec, TypeVar

import pulumi

__all__ = ["Built", "Child"]

ArgsT = TypeVar("ArgsT")
P = ParamSpec("P")
R = TypeVar("R", bound=pulumi.Resource)


@dataclass(frozen=True)
class Child:
    """A child's name within its component, and the options it adds to parent and dependencies."""

    name: str
    depends_on: Sequence[pulumi.Resource] = ()
    ignore_changes: list[str] | None = None
    protect: bool | None = None


class Built(pulumi.ComponentResource, Generic[ArgsT]):
    """A component made from one frozen args value: the constructor is written once, here.

    A subclass names its type token (``KIND``, part of every child's URN: renaming
    the class must not replace the resources) and creates its children in
    :meth:`build`, each with :meth:`declare`.

    Children are parented to the component and wait for its ``depends_on``:
    children do not inherit a component's ``depends_on`` by themselves, so the
    APIs a component needs are passed in once and every child gets them through
    :meth:`child`.

    Children are named after their component (:meth:`named`): the engine forms a
    child's URN from its parent's type chain, its own type and its name, so two
    instances of one component whose children had fixed names ("function",
    "subscription") would register the same URN twice, which ``pulumi preview``
    refuses ("Duplicate resource URN"). ``tests/infra/test_engine.py`` holds the
    program to it.

    :meth:`declare` applies both rules to a child, so no declaration repeats
    (or forgets) its name prefix, its parent or the component's dependencies.
    """

    KIND: ClassVar[str]

    def __init__(
        self,
        name: str,
        args: ArgsT,
        depends_on: Sequence[pulumi.Resource] = (),
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(f"hookpress:infra:{self.KIND}", name, None, opts)
        self.component_name = name
        self._depends_on = list(depends_on)
        self.build(args)

    def build(self, args: ArgsT) -> None:
        """Create the children (:meth:`declare`) and register the outputs."""
        raise NotImplementedError

    def named(self, child: str) -> str:
        """The logical name of a child: ``<component name>-<child>``."""
        return f"{self.component_name}-{child}"

    def child(self, child: Child) -> pulumi.ResourceOptions:
        """Options for a child resource: parent=self plus the component's dependencies."""
        return pulumi.ResourceOptions(
            parent=self,
            depends_on=[*self._depends_on, *child.depends_on],
            ignore_changes=child.ignore_changes,
            protect=child.protect,
        )

    def declare(
        self,
        cls: Callable[Concatenate[str, pulumi.ResourceOptions | None, P], R],
        child: str | Child,
    ) -> Callable[P, R]:
        """``cls`` as a child: call the result with the resource's own arguments.

        ``cls`` is any resource class (or factory) that takes its name and options
        first, as every generated Pulumi resource does; the result takes the rest,
        so mypy still checks each argument against ``cls``. The name is
        :meth:`named`'s, the options :meth:`child`'s.
        """
        place = Child(child) if isinstance(child, str) else child

        def create(*args: P.args, **kwargs: P.kwargs) -> R:
            return cls(self.named(place.name), self.child(place), *args, **kwargs)

        return create
