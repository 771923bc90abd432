"""The ``yilian`` command mounts only the command group a command line asks for (cli._mount)."""

from __future__ import annotations

import subprocess
import sys

PROBE = (
    "import sys; sys.argv = ['yilian', *sys.argv[1:]]; import yilian.cli as cli; "
    "print(sorted(g.name for g in cli.app.registered_groups), 'duckdb' in sys.modules)"
)


def _mounted(*argv: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_a_group_command_imports_only_its_group() -> None:
    assert _mounted("users", "list") == "['users'] False"


def test_serve_and_migrate_need_no_group() -> None:
    assert _mounted("migrate") == "[] False"


def test_help_and_unknown_words_mount_every_group() -> None:
    everything = "['audit', 'mpi', 'referral', 'store', 'users', 'views'] True"
    assert _mounted("--help") == everything
    assert _mounted("no-such-command") == everything
