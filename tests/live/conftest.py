"""Fixtures of the live tests: a real AzureSession (recorded with ``--record DIR``), the VM."""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from wac_azure import AzureSession, VmTarget

from tests.live.recorder import RecordingTransport, Sanitizer


@pytest.fixture
def live_subscription() -> str:
    """The subscription the live tests read (``AZURE_SUBSCRIPTION_ID``)."""
    return os.environ["AZURE_SUBSCRIPTION_ID"]


@pytest.fixture
def live_vm() -> VmTarget:
    """The VM named by ``WAC_AZURE_LIVE_VM`` (a resource ID); the test is skipped without it."""
    value = os.environ.get("WAC_AZURE_LIVE_VM")
    if not value:
        pytest.skip("WAC_AZURE_LIVE_VM (a VM resource ID) is not set")
    return VmTarget.parse(value)


@pytest.fixture
async def live_traffic(
    request: pytest.FixtureRequest, live_subscription: str
) -> AsyncIterator[RecordingTransport]:
    """Every exchange of the test (sanitized); saved to ``--record DIR`` when given."""
    # lazy: azure-core's aiohttp transport only when a live test really runs
    from azure.core.pipeline.transport import AioHttpTransport

    sanitizer = Sanitizer(
        subscription_ids=[live_subscription],
        tenant_ids=[os.environ.get("AZURE_TENANT_ID", "")],
        secrets=[os.environ.get("AZURE_CLIENT_ID", ""), os.environ.get("AZURE_USERNAME", "")],
    )
    recorder = RecordingTransport(AioHttpTransport(), sanitizer)
    async with recorder:
        yield recorder
    folder = request.config.getoption("--record")
    if folder:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
        recorder.save(Path(folder) / f"wac_azure.live.{name}.yaml")


@pytest.fixture
async def live_session(live_traffic: RecordingTransport) -> AsyncIterator[AzureSession]:
    """An AzureSession with DefaultAzureCredential over the recording transport."""
    # lazy: azure-identity only when a live test really runs
    from azure.identity.aio import DefaultAzureCredential

    credential = DefaultAzureCredential()
    try:
        async with AzureSession(credential, transport=live_traffic) as session:
            yield session
    finally:
        await credential.close()
