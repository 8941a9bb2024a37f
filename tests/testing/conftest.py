"""Route tests run on both emulator fronts.

In ``test_routes_compute.py`` and ``test_routes_network.py`` the ``session``
fixture is parametrized: every route test talks to the emulator once through the
in-process transport and once over HTTPS on loopback (real TLS, real sockets),
so both fronts are shown to carry every route.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from wac_azure import AzureSession
from wac_azure.testing import ArmEmulator

_BOTH_FRONTS = {"test_routes_compute", "test_routes_network"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if module in _BOTH_FRONTS and "session" in metafunc.fixturenames:
        metafunc.parametrize("front", ["in-process", "https"], indirect=True)


@pytest.fixture
def front(request: pytest.FixtureRequest) -> str:
    return str(getattr(request, "param", "in-process"))


@pytest.fixture
async def session(emu: ArmEmulator, front: str) -> AsyncIterator[AzureSession]:
    """An :class:`AzureSession` over the in-process transport or the HTTPS server."""
    if front == "https":
        async with emu.serve() as srv, srv.session(polling_interval=0.01) as s:
            yield s
    else:
        async with emu.session() as s:
            yield s
