"""Shared fixtures: paths, the installed CLI, and small generated stores."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).parent
ROOT = TESTS.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(TESTS))


@pytest.fixture(scope="session")
def walake_cli():
    """The click group with every command registered, for CliRunner tests."""
    import ingest.cli as cli_module

    if not cli_module.cli.commands:
        cli_module._register()
    return cli_module.cli
