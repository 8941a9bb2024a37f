"""The ``arm_emulator`` pytest fixture: a user's suite gets it without a conftest (the
``pytest11`` entry point), seeded by option, ini or marker, and a test whose emulator
recorded an internal error fails. Run on tiny suites with pytest's ``pytester``."""

from __future__ import annotations

import importlib
import importlib.metadata
import tomllib
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

PLUGIN = "wac_azure.testing.pytest_plugin"
ROOT = Path(__file__).resolve().parents[2]


def _entry_point_installed() -> bool:
    return any(ep.value == PLUGIN for ep in importlib.metadata.entry_points(group="pytest11"))


def _run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # Installed (`pip install -e .`, as the README's test line does) the entry point loads
    # the plugin by itself; from a bare checkout it is named with -p, as the docs say.
    extra = () if _entry_point_installed() else ("-p", PLUGIN)
    quiet = ("-W", "ignore::pytest.PytestAssertRewriteWarning", "-p", "no:asyncio")
    return pytester.runpytest(*extra, "-p", "no:cacheprovider", *quiet, *args)


def test_the_entry_point_is_declared_and_importable() -> None:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert meta["project"]["entry-points"]["pytest11"] == {"wac_azure": PLUGIN}
    module = importlib.import_module(PLUGIN)
    assert callable(module.arm_emulator)
    assert hasattr(module, "pytest_addoption")


def test_an_installed_wac_azure_registers_the_entry_point() -> None:
    """Installed the way the README's test line installs it (`pip install -e '.[dev]'`),
    the entry point is registered, so every run below uses it without ``-p``; only a
    bare checkout that was never installed falls back to naming the plugin."""
    try:
        importlib.metadata.distribution("wac-azure")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("wac-azure is not installed (a bare checkout): nothing registers it")
    assert _entry_point_installed(), (
        "wac-azure is installed but its pytest11 entry point is not registered: "
        "reinstall it (pip install -e .) so the metadata has the entry point"
    )


USER_SUITE = """
import asyncio

import pytest

import wac_azure


def test_enable_on_the_fixture(arm_emulator):
    target = arm_emulator.add_windows_vm("vm1")

    async def go():
        async with arm_emulator.session() as session:
            return await wac_azure.enable(session, target)

    result = asyncio.run(go())
    assert result.url.endswith(":6516")
    assert arm_emulator.writes()
    put = [r for r in arm_emulator.writes() if r.path.endswith("/extensions/AdminCenter")]
    assert put[0].request_json["properties"]["settings"]["port"] == "6516"
    print("SEED", arm_emulator.random_seed)


@pytest.mark.arm_emulator(seed=41, lro_polls=3)
def test_marker_sets_seed_and_options(arm_emulator):
    assert arm_emulator.random_seed == 41
    assert arm_emulator.lro_polls == 3


def test_each_test_gets_a_fresh_one(arm_emulator):
    assert arm_emulator.requests == []
    assert sum(1 for _ in arm_emulator.store) == 0
"""


@pytest.mark.slow
def test_a_users_suite_has_the_fixture_without_a_conftest(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_SUITE)
    assert not (pytester.path / "conftest.py").exists()
    result = _run(pytester, "-s", "--strict-markers")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*SEED 0*"])


@pytest.mark.slow
def test_the_seed_comes_from_the_option_or_the_ini(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_seed="""
def test_seed(arm_emulator):
    print("SEED", arm_emulator.random_seed)
"""
    )
    _run(pytester, "-s", "--arm-emulator-seed", "1234").stdout.fnmatch_lines(["*SEED 1234*"])
    pytester.makeini("[pytest]\narm_emulator_seed = 77\n")
    _run(pytester, "-s").stdout.fnmatch_lines(["*SEED 77*"])


@pytest.mark.slow
def test_same_seed_same_world(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_ids="""
import asyncio

import pytest

import wac_azure


@pytest.mark.parametrize(
    "seed", [pytest.param(n, marks=pytest.mark.arm_emulator(seed=n)) for n in (5, 5, 6)]
)
def test_ids(arm_emulator, seed):
    assert arm_emulator.random_seed == seed
    target = arm_emulator.add_windows_vm("vm1")

    async def go():
        async with arm_emulator.session() as session:
            await wac_azure.enable(session, target, dry_run=True)

    asyncio.run(go())
    ids = [r.response_headers["x-ms-request-id"] for r in arm_emulator.requests]
    print("REQIDS", seed, ids)
"""
    )
    result = _run(pytester, "-s")
    result.assert_outcomes(passed=3)
    seen = [line.split("REQIDS ")[1] for line in result.stdout.lines if "REQIDS " in line]
    assert len(seen) == 3
    assert seen[0] == seen[1]  # seed 5 twice: the same request IDs
    assert seen[0].split(" ", 1)[1] != seen[2].split(" ", 1)[1]  # seed 6: others


BUGGY_SUITE = """
import asyncio

import wac_azure
from wac_azure.testing.routes.router import Router


async def _explode(emu, req, params):
    raise KeyError("properties")


def test_swallowed_emulator_bug_fails_the_test(arm_emulator):
    target = arm_emulator.add_windows_vm("vm1")
    router = Router()  # a raising route in front of the emulator's own: a stand-in bug
    router.add("GET", "/subscriptions/{sub}/providers/Microsoft.Network/locations/{loc}"
               "/serviceTags", _explode)
    router.extend(arm_emulator._router)
    arm_emulator._router = router

    async def go():
        async with arm_emulator.session() as session:
            # the library reads service tags best-effort: it swallows the 500
            return await wac_azure.enable(session, target, dry_run=True)

    asyncio.run(go())


def test_a_clean_test_passes(arm_emulator):
    arm_emulator.add_windows_vm("vm1")
"""


@pytest.mark.slow
def test_an_emulator_bug_fails_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_buggy=BUGGY_SUITE)
    result = _run(pytester, "--arm-emulator-seed", "9")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*ARM emulator bug(s) during the test*seed 9*",
            "*KeyError*properties*",
        ]
    )
    result.stdout.no_fnmatch_line("*test_a_clean_test_passes FAILED*")


@pytest.mark.slow
def test_bad_marker_use_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_bad="""
import pytest

@pytest.mark.arm_emulator(3)
def test_positional(arm_emulator):
    pass
"""
    )
    result = _run(pytester)
    result.stdout.fnmatch_lines(["*takes keywords only*"])
    assert result.ret != 0
