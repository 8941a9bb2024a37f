"""Exit codes: a usage error exits 2 naming the real error; a failure after Azure answered, 1."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cli._run import BASE, run


@pytest.mark.parametrize(
    "argv",
    [
        ("enable", "--emulator"),  # neither TARGET nor --all
        ("enable", f"{BASE}/web-01", "--all", "--emulator"),  # both
        ("enable", "--all", "--salt", "s", "--emulator"),  # single-VM option with --all
        ("enable", f"{BASE}/web-01", "--concurrency", "4", "--emulator"),
        ("enable", f"{BASE}/web-01", "--port", "70000", "--emulator"),
        ("enable", f"{BASE}/web-01", "--proxy", "http://u:p@proxy:3128", "--emulator"),
        ("enable", f"{BASE}/web-01", "--public", "not-an-address", "--emulator"),
        ("enable-many", f"{BASE}/web-01", "--concurrency", "0", "--emulator"),
    ],
)
def test_invalid_user_arguments_exit_2(argv: tuple[str, ...]) -> None:
    code, _, err = run(*argv)
    assert code == 2
    assert "usage error" in err


def test_usage_error_json_names_the_real_error() -> None:
    code, out, _ = run("check", "not-a-resource-id", "--emulator", "--json")
    assert code == 2
    assert json.loads(out)["error"]["type"] == "InvalidResourceIdError"


def test_an_invalid_input_error_after_azure_answered_exits_1(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A ConfigurationError (an InvalidInputError) raised by a closed session is not the
    user's fault: exit 1, not 2."""
    import wac_azure._cli.app as cli

    original = cli.prepare_cli_emulator

    async def closing(emu: Any, session: Any) -> Any:
        vms = await original(emu, session)
        await session.close()
        return vms

    monkeypatch.setattr(cli, "prepare_cli_emulator", closing)
    code, out, err = run("status", f"{BASE}/app-01", "--emulator", "--json")
    assert code == 1
    assert "usage error" not in err
    assert json.loads(out)["error"]["type"] == "ConfigurationError"
