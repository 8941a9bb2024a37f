"""The ``arm_emulator`` pytest fixture, registered through the ``pytest11`` entry point.

Installing wac-azure makes it available to every pytest suite in that environment, with
no ``conftest.py``::

    import wac_azure
    import pytest

    @pytest.mark.arm_emulator(seed=7)          # optional: the seed, and ArmEmulator options
    async def test_enable(arm_emulator):
        target = arm_emulator.add_windows_vm("vm1")
        async with arm_emulator.session() as session:
            result = await wac_azure.enable(session, target)
        assert result.url.endswith(":6516")
        assert [r.method for r in arm_emulator.writes()]

* **Seeded.** The emulator's seed (generated IDs, fault and conflict draws) is 0, or
  ``--arm-emulator-seed N`` on the command line (or ``arm_emulator_seed = N`` in the
  ini file) for the whole run, or ``@pytest.mark.arm_emulator(seed=N)`` for one test.
  The marker's other keywords go to :class:`~wac_azure.testing.ArmEmulator`
  (``lro_polls=3``, ``page_size=10``...). The seed is shown in the report of a test that
  fails, so a failure can be replayed.
* **Emulator bugs fail the test.** A route handler that raised is answered with a 500
  (as ARM's own would be), which azure-core retries and the code under test may
  swallow; when the test used ``arm_emulator`` and ``arm_emulator.internal_errors`` is
  not empty afterwards, the test fails with each bug and its traceback.

Without the entry point (a source checkout not installed), load it with
``-p wac_azure.testing.pytest_plugin`` or ``pytest_plugins = ["wac_azure.testing.pytest_plugin"]``
in the root ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pytest

from wac_azure.testing import ArmEmulator

__all__ = ["arm_emulator"]

_MARKER = "arm_emulator"
_OPTION = "arm_emulator_seed"
#: Where the emulator of a test is kept on its item, for the check after the call.
_KEY = pytest.StashKey[ArmEmulator]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--arm-emulator-seed N`` and the ``arm_emulator_seed`` ini option."""
    group = parser.getgroup("wac_azure", "wac_azure ARM emulator")
    group.addoption(
        "--arm-emulator-seed",
        dest=_OPTION,
        type=int,
        default=None,
        metavar="N",
        help="seed of the arm_emulator fixture's emulator (default: the ini option, else 0)",
    )
    parser.addini(_OPTION, "seed of the arm_emulator fixture's emulator (default 0)", default="0")


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``arm_emulator`` marker (``--strict-markers`` knows it)."""
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(seed=None, **options): the seed and ArmEmulator options of the "
        "arm_emulator fixture for this test",
    )


def _settings(request: pytest.FixtureRequest) -> tuple[int, dict[str, Any]]:
    config = request.config
    seed: Any = config.getoption(_OPTION)
    if seed is None:
        raw = str(config.getini(_OPTION) or "0").strip()
        try:
            seed = int(raw)
        except ValueError:
            raise pytest.UsageError(f"arm_emulator_seed must be an integer, got {raw!r}") from None
    options: dict[str, Any] = {}
    marker = request.node.get_closest_marker(_MARKER)
    if marker is not None:
        if marker.args:
            raise pytest.UsageError(
                f"@pytest.mark.{_MARKER} takes keywords only (seed=..., lro_polls=...), "
                f"got {marker.args!r}"
            )
        options = dict(marker.kwargs)
        marked_seed = options.pop("seed", None)
        if marked_seed is not None:
            seed = marked_seed
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise pytest.UsageError(f"the arm_emulator seed must be an integer, got {seed!r}")
    return seed, options


@pytest.fixture
def arm_emulator(request: pytest.FixtureRequest) -> ArmEmulator:
    """A fresh in-process :class:`~wac_azure.testing.ArmEmulator`, seeded (see the module
    docs); the test fails if a route handler raised while it ran."""
    seed, options = _settings(request)
    emu = ArmEmulator(seed=seed, **options)
    request.node.stash[_KEY] = emu
    request.node.user_properties.append(("arm_emulator_seed", seed))
    return emu


def _bugs_of(emu: ArmEmulator) -> str:
    bugs = list(emu.internal_errors)
    details = "\n".join(f"  {bug}\n{bug.traceback}" for bug in bugs)
    return (
        f"{len(bugs)} ARM emulator bug(s) during the test (route handlers raised; "
        f"answered 500; seed {emu.random_seed}):\n{details}"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """After the test body: fail it when its emulator recorded internal errors."""
    result = yield
    emu = item.stash.get(_KEY, None)
    if emu is not None and emu.internal_errors:
        pytest.fail(_bugs_of(emu), pytrace=False)
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Name the emulator's seed in the report of a failed test that used it."""
    report = yield
    emu = item.stash.get(_KEY, None)
    if emu is not None and report.failed and call.when == "call":
        report.sections.append(
            ("arm_emulator", f"seed {emu.random_seed} (replay: --arm-emulator-seed)")
        )
    return report
