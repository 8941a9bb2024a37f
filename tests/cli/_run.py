"""What the CLI tests share: the emulator's VM ids and the CLI run in-process."""

from __future__ import annotations

import io

from wac_azure._cli.app import main
from wac_azure.testing import DEFAULT_RESOURCE_GROUP, DEFAULT_SUBSCRIPTION

BASE = (
    f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/{DEFAULT_RESOURCE_GROUP}"
    "/providers/Microsoft.Compute/virtualMachines"
)


def run(*argv: str) -> tuple[int, str, str]:
    """``wac-azure *argv`` in this process: (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()
