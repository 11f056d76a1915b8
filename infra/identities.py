"""One service account per workload: each function, each caller of a function, the builds.

No workload ever runs as the default compute service account, and no account
is shared, so a grant to one never widens another. The roles each account
holds are granted next to the resource they are on (see ``access.py``,
``push.py``, ``schedule.py``, ``build.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
from pulumi_gcp import serviceaccount

from infra.base import Built

__all__ = ["Identities", "IdentitiesArgs"]


@dataclass(frozen=True)
class IdentitiesArgs:
    """The project, the account-id prefix and the roles (role -> description)."""

    project: str
    prefix: str
    roles: Mapping[str, str]


class Identities(Built[IdentitiesArgs]):
    """Creates ``{prefix}-{role}`` service accounts for the roles given (description by role)."""

    KIND = "Identities"

    def build(self, args: IdentitiesArgs) -> None:
        self.accounts: dict[str, serviceaccount.Account] = {
            role: self.declare(serviceaccount.Account, role)(
                project=args.project,
                account_id=f"{args.prefix}-{role}",
                display_name=f"hookpress {role}",
                description=description,
            )
            for role, description in args.roles.items()
        }
        self.register_outputs({role: sa.email for role, sa in self.accounts.items()})

    def email(self, role: str) -> pulumi.Output[str]:
        """The e-mail of the account for ``role``."""
        return self.accounts[role].email

    def member(self, role: str) -> pulumi.Output[str]:
        """``serviceAccount:<email>`` of the account for ``role``, for IAM bindings."""
        return self.accounts[role].member
