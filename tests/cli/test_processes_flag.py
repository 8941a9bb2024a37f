"""``--processes N`` of the fleet verbs: checked, and refused with the in-process emulator."""

from __future__ import annotations

import io
import json

from wac_azure._cli.app import main
from wac_azure.testing import DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION

BASE = (
    f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{DEFAULT_RESOURCE_GROUP}"
    "/providers/Microsoft.Compute/virtualMachines"
)


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_processes_below_one_is_a_usage_error() -> None:
    code, _, err = run("enable-many", f"{BASE}/web-01", "--processes", "0", "--emulator")
    assert code == 2
    assert "--processes must be at least 1" in err


def test_processes_need_real_azure_not_the_embedded_emulator() -> None:
    code, _, err = run("enable-many", f"{BASE}/web-01", "--processes", "2", "--emulator")
    assert code == 2
    assert "needs real Azure" in err


def test_one_process_runs_as_before() -> None:
    code, out, _ = run(
        "enable-many", f"{BASE}/web-01", "--processes", "1", "--emulator", "--json", "--quiet"
    )
    assert code == 0
    assert json.loads(out)["counts"]["enabled"] == 1
