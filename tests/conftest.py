"""Shared pytest fixtures: a fresh ARM emulator, an AzureSession wired to it, a TLS certificate."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from wac_azure import AzureSession
from wac_azure.testing import ArmEmulator

from tests._tls import make_self_signed
from tests.live.settings import live_skip_reason


@pytest.fixture
def emu() -> ArmEmulator:
    """A fresh in-process ARM emulator (seed 0, LROs complete after one poll)."""
    return ArmEmulator(seed=0)


@pytest.fixture
async def session(emu: ArmEmulator) -> AsyncIterator[AzureSession]:
    """An :class:`AzureSession` over the emulator's in-process transport."""
    async with emu.session() as s:
        yield s


@pytest.fixture(autouse=True)
def _no_emulator_bugs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a test that used ``emu`` if a route handler raised (``emu.internal_errors``).

    The emulator answers such bugs with a 500 that azure-core retries and the code under
    test may swallow; this keeps them from hiding.
    """
    if "emu" not in request.fixturenames:
        yield
        return
    emulator = request.getfixturevalue("emu")
    yield
    bugs = list(getattr(emulator, "internal_errors", ()))
    if bugs:
        details = "\n".join(f"  {bug}\n{bug.traceback}" for bug in bugs)
        pytest.fail(f"{len(bugs)} emulator bug(s) during the test:\n{details}", pytrace=False)


@pytest.fixture(scope="module")
def cert_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for wac-probe.test and 127.0.0.1 and its key (PEM files)."""
    return make_self_signed(tmp_path_factory.mktemp("tls"))


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--record DIR``: the live tests save their traffic there as sanitized cassettes."""
    parser.addoption(
        "--record",
        metavar="DIR",
        default=None,
        help="live tests (-m live) write sanitized vcrpy cassettes of their ARM traffic to DIR",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip the ``live`` tests unless selected, configured, and not in CI (nothing contacted)."""
    reason = live_skip_reason(config)
    if reason is None:
        return
    skip = pytest.mark.skip(reason=reason)
    for item in items:
        if item.get_closest_marker("live") is not None:
            item.add_marker(skip)
