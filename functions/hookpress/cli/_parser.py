"""What every command's parser shares: the help layout and the stack options.

Each command module registers itself with :func:`add_command`, which gives the
new sub-parser the stack options and the exit codes in its help; the module
then adds its own flags beside the body that reads them.
"""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path
from typing import TypeAlias

from hookpress.cli._exit import EXIT_CODES_HELP

__all__ = ["Commands", "Formatter", "add_command", "add_group", "stack_options"]

#: what ``add_subparsers`` returns: where commands (or a group's commands) are registered
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions and epilogs as written; options in a 100-column layout."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def stack_options(parser: argparse.ArgumentParser, *, nested: bool) -> None:
    """``--local``, ``--stack-outputs`` and the overrides of one stack's names, and ``--json``."""
    # Nested parsers leave absent options out of the namespace (SUPPRESS), so a
    # value given before the command is not overwritten by the command's default.
    default: str | None = argparse.SUPPRESS if nested else None
    group = parser.add_argument_group("stack (which one to operate on)")
    group.add_argument(
        "--local", metavar="FILE", type=Path, default=default, help="a local stack's local.json"
    )
    group.add_argument(
        "--stack-outputs",
        metavar="FILE",
        type=Path,
        default=default,
        help="a deployed stack: `pulumi stack output --json > FILE`",
    )
    group.add_argument("--project", default=default, help="Google Cloud project id")
    group.add_argument("--bucket", default=default, help="the raw-payload bucket")
    group.add_argument("--database", default=default, help="Firestore database id")
    group.add_argument("--ingress-url", default=default, help="the ingress base URL")
    group.add_argument("--events-topic", default=default, help="topic of event keys")
    group.add_argument("--dead-subscription", default=default, help="dead-letter pull subscription")
    parser.add_argument(
        "--json",
        action="store_true",
        default=default,
        help="print one JSON document on stdout instead of text",
    )


def add_command(
    commands: Commands, name: str, help_text: str, description: str, epilog: str = ""
) -> argparse.ArgumentParser:
    """A command's parser: its help, the stack options and the exit codes."""
    sub = commands.add_parser(
        name,
        help=help_text,
        description=textwrap.fill(description, 88),
        epilog=(epilog + "\n" + EXIT_CODES_HELP).strip(),
        formatter_class=Formatter,
    )
    stack_options(sub, nested=True)
    return sub


def add_group(commands: Commands, name: str, help_text: str, description: str) -> Commands:
    """A command with commands of its own (``events``, ``secrets``, ``keys``): where they go."""
    group = add_command(commands, name, help_text, description)
    return group.add_subparsers(dest=f"{name}_command", metavar="COMMAND", required=True)
