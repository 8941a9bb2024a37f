"""When the live tests may run: ``-m live``, a subscription, a credential, and never in CI.

Decided from the environment and the file system only: nothing is contacted.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

#: Environment variables that give DefaultAzureCredential something to work with.
_CREDENTIAL_ENV = (
    ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET"),
    ("AZURE_CLIENT_ID", "AZURE_CLIENT_CERTIFICATE_PATH"),
    ("AZURE_CLIENT_ID", "AZURE_FEDERATED_TOKEN_FILE"),
    ("AZURE_USERNAME",),
    ("IDENTITY_ENDPOINT",),
    ("MSI_ENDPOINT",),
)


def credential_source() -> str | None:
    """What DefaultAzureCredential would find, judged without contacting anything."""
    for names in _CREDENTIAL_ENV:
        if all(os.environ.get(n) for n in names):
            return "environment (" + ", ".join(names) + ")"
    config = Path(os.environ.get("AZURE_CONFIG_DIR") or Path.home() / ".azure")
    if (config / "msal_token_cache.json").exists() or (config / "msal_token_cache.bin").exists():
        return f"Azure CLI login ({config})"
    if (Path.home() / ".azd").is_dir():
        return "Azure Developer CLI login"
    return None


def live_skip_reason(config: pytest.Config) -> str | None:
    """Why the live tests are skipped in this run (``None``: they run)."""
    if "CI" in os.environ:
        return "CI is set: live tests never run in CI"
    if "live" not in (config.getoption("markexpr", "") or ""):
        return "live tests run only when selected with -m live"
    if not os.environ.get("AZURE_SUBSCRIPTION_ID"):
        return "AZURE_SUBSCRIPTION_ID is not set"
    if credential_source() is None:
        return (
            "no credential for DefaultAzureCredential (az login, AZURE_CLIENT_ID with a "
            "secret/certificate/federated token, or a managed identity)"
        )
    return None
