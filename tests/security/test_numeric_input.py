"""Every public numeric option refuses NaN, infinities, negatives (zero where it means
nothing), bools and strings with a ConfigurationError, before any request is sent."""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from typing import Any

import attrs
import pytest

import wac_azure
from wac_azure import (
    AzureSession,
    ConfigurationError,
    ExtensionManager,
    NetworkRulePlanner,
    PacingConfig,
    RequirementChecker,
    RetryConfig,
    SessionFactory,
    VmTarget,
    WacAzureError,
    diagnose,
    disable,
    disable_many,
    discover,
    enable,
    enable_many,
    pacing_priority,
    plan_network,
    read_vm_facts,
)
from wac_azure.testing import ArmEmulator

NAN, INF = math.nan, math.inf


class DefaultCredential:
    """Stands for a credential class (what SessionFactory takes); never called here."""


# What each kind of option must refuse. Zero is refused where it means nothing (a
# timeout of 0 s, a concurrency of 0, port 0, a fleet that lists its VMs in a busy loop);
# a wait of 0 s (retry waits, LRO polling) is allowed.
BAD: dict[str, list[Any]] = {
    "seconds": [NAN, INF, -INF, -1, -0.5, 0, True, False, "5", None],
    "seconds-or-none": [NAN, INF, -INF, -1, 0, True, "5"],
    "wait": [NAN, INF, -INF, -1, -0.001, True, "5"],
    "count": [NAN, INF, -1, 0, 2.5, True, "5", None],
    "count-or-none": [NAN, INF, -1, 0, 2.5, True, "5"],
    "port": [NAN, INF, -1, 0, 65536, 6516.0, True, "6516", None],
    "port-or-none": [NAN, INF, -1, 0, 65536, 6516.0, True, "6516"],
    "ports": [[NAN], [INF], [-1], [0], [65536], [6516.0], [True], ["6516"], "6516", 6516, None],
    "priority": [NAN, INF, -1, 1.5, True, "1", None],
    "fraction": [NAN, INF, -1, 0.95, True, "0.1", None],
    "bucket": [
        (NAN, 25.0),
        (250, NAN),
        (250, INF),
        (INF, 25.0),
        (-1, 25.0),
        (0, 25.0),
        (250, 0),
        (250, -1),
        (2.5, 25.0),
        (True, 25.0),
        (250, True),
        (250,),
        "250",
        None,
    ],
}


@attrs.frozen
class World:
    emu: ArmEmulator
    session: AzureSession
    target: VmTarget
    facts: Any


Call = Callable[[World, Any], Any]


async def _apply(w: World, v: Any) -> Any:
    return await NetworkRulePlanner(w.session).apply(plan_network(w.facts), timeout=v)


def _replan(w: World, v: Any) -> Any:
    nsg = next(iter(w.facts.nsgs.values()))
    return NetworkRulePlanner.replan_nsg([w.facts], nsg, port=v)


async def _priority(w: World, v: Any) -> None:
    with pacing_priority(v):
        pass


def _probe_address(w: World, v: Any) -> Any:
    return diagnose(w.session, w.target, probe=True, probe_address=("127.0.0.1", v))


#: (public callable, parameter) -> (kind, call with the value).
CASES: dict[tuple[str, str], tuple[str, Call]] = {
    ("AzureSession.sleep", "seconds"): ("wait", lambda w, v: w.session.sleep(v)),
    ("AzureSession", "polling_interval"): (
        "wait",
        lambda w, v: w.emu.session(polling_interval=v),
    ),
    ("AzureSession", "connection_limit"): (
        "count-or-none",
        lambda w, v: w.emu.session(connection_limit=v),
    ),
    ("SessionFactory", "connection_limit"): (
        "count-or-none",
        lambda w, v: SessionFactory(DefaultCredential, connection_limit=v),
    ),
    ("SessionFactory", "polling_interval"): (
        "wait",
        lambda w, v: SessionFactory(DefaultCredential, polling_interval=v),
    ),
    ("Pacer.connection_window", "minimum"): (
        "count",
        lambda w, v: w.session.pacer.connection_window(minimum=v),
    ),
    ("Pacer.connection_window", "maximum"): (
        "count",
        lambda w, v: w.session.pacer.connection_window(maximum=v),
    ),
    ("enable_many", "processes"): (
        "count-or-none",
        lambda w, v: enable_many(w.session, [w.target], processes=v),
    ),
    ("disable_many", "processes"): (
        "count-or-none",
        lambda w, v: disable_many(w.session, [w.target], processes=v),
    ),
    ("RetryConfig", "attempts"): ("count", lambda w, v: RetryConfig(attempts=v)),
    ("RetryConfig", "initial"): ("wait", lambda w, v: RetryConfig(initial=v)),
    ("RetryConfig", "maximum"): ("wait", lambda w, v: RetryConfig(maximum=v)),
    ("RetryConfig", "jitter"): ("wait", lambda w, v: RetryConfig(jitter=v)),
    ("RetryConfig", "deadline"): ("seconds", lambda w, v: RetryConfig(deadline=v)),
    ("PacingConfig", "reads"): ("bucket", lambda w, v: PacingConfig(reads=v)),
    ("PacingConfig", "writes"): ("bucket", lambda w, v: PacingConfig(writes=v)),
    ("PacingConfig", "deletes"): ("bucket", lambda w, v: PacingConfig(deletes=v)),
    ("PacingConfig", "reserve"): ("fraction", lambda w, v: PacingConfig(reserve=v)),
    ("PacingConfig", "refill_scale"): ("seconds", lambda w, v: PacingConfig(refill_scale=v)),
    ("pacing_priority", "priority"): ("priority", _priority),
    ("ExtensionManager.connection_url", "port"): (
        "port-or-none",
        lambda w, v: ExtensionManager(w.session).connection_url(w.target, port=v),
    ),
    ("ExtensionManager.connection_url", "timeout"): (
        "seconds",
        lambda w, v: ExtensionManager(w.session).connection_url(w.target, timeout=v),
    ),
    ("ExtensionManager.install", "port"): (
        "port",
        lambda w, v: ExtensionManager(w.session).install(w.target, port=v),
    ),
    ("ExtensionManager.install", "timeout"): (
        "seconds",
        lambda w, v: ExtensionManager(w.session).install(w.target, timeout=v),
    ),
    ("ExtensionManager.locate_port", "timeout"): (
        "seconds",
        lambda w, v: ExtensionManager(w.session).locate_port(w.target, timeout=v),
    ),
    ("ExtensionManager.status", "timeout"): (
        "seconds",
        lambda w, v: ExtensionManager(w.session).status(w.target, timeout=v),
    ),
    ("ExtensionManager.uninstall", "timeout"): (
        "seconds",
        lambda w, v: ExtensionManager(w.session).uninstall(w.target, timeout=v),
    ),
    ("NetworkRulePlanner.apply", "timeout"): ("seconds-or-none", _apply),
    ("NetworkRulePlanner.plan", "port"): (
        "port",
        lambda w, v: NetworkRulePlanner(w.session).plan(w.target, port=v),
    ),
    ("NetworkRulePlanner.plan", "timeout"): (
        "seconds-or-none",
        lambda w, v: NetworkRulePlanner(w.session).plan(w.target, timeout=v),
    ),
    ("NetworkRulePlanner.plan_many", "port"): (
        "port",
        lambda w, v: NetworkRulePlanner(w.session).plan_many([w.target], port=v),
    ),
    ("NetworkRulePlanner.plan_many", "timeout"): (
        "seconds-or-none",
        lambda w, v: NetworkRulePlanner(w.session).plan_many([w.target], timeout=v),
    ),
    ("NetworkRulePlanner.plan_removal", "timeout"): (
        "seconds-or-none",
        lambda w, v: NetworkRulePlanner(w.session).plan_removal(w.target, timeout=v),
    ),
    ("NetworkRulePlanner.plan_removal", "ports"): (
        "ports",
        lambda w, v: NetworkRulePlanner(w.session).plan_removal(w.target, ports=v),
    ),
    ("NetworkRulePlanner.remove", "ports"): (
        "ports",
        lambda w, v: NetworkRulePlanner(w.session).remove(w.target, ports=v),
    ),
    ("NetworkRulePlanner.remove", "timeout"): (
        "seconds-or-none",
        lambda w, v: NetworkRulePlanner(w.session).remove(w.target, timeout=v),
    ),
    ("NetworkRulePlanner.replan_nsg", "port"): ("port", _replan),
    ("RequirementChecker.check", "port"): (
        "port",
        lambda w, v: RequirementChecker(w.session).check(w.target, port=v),
    ),
    ("RequirementChecker.check", "timeout"): (
        "seconds-or-none",
        lambda w, v: RequirementChecker(w.session).check(w.target, timeout=v),
    ),
    ("diagnose", "timeout"): ("seconds", lambda w, v: diagnose(w.session, w.target, timeout=v)),
    ("diagnose", "probe_timeout"): (
        "seconds",
        lambda w, v: diagnose(w.session, w.target, probe=True, probe_timeout=v),
    ),
    ("diagnose", "probe_address"): ("port", _probe_address),
    ("disable", "timeout"): ("seconds", lambda w, v: disable(w.session, w.target, timeout=v)),
    ("disable_many", "concurrency"): (
        "count-or-none",
        lambda w, v: disable_many(w.session, [w.target], concurrency=v),
    ),
    ("disable_many", "timeout"): (
        "seconds",
        lambda w, v: disable_many(w.session, [w.target], timeout=v),
    ),
    ("disable_many", "poll_interval"): (
        "seconds",
        lambda w, v: disable_many(w.session, [w.target], poll_interval=v),
    ),
    ("discover", "timeout"): (
        "seconds-or-none",
        lambda w, v: discover(w.session, w.target.subscription_id, timeout=v),
    ),
    ("enable", "port"): ("port", lambda w, v: enable(w.session, w.target, port=v)),
    ("enable", "timeout"): ("seconds", lambda w, v: enable(w.session, w.target, timeout=v)),
    ("enable_many", "port"): ("port", lambda w, v: enable_many(w.session, [w.target], port=v)),
    ("enable_many", "concurrency"): (
        "count-or-none",
        lambda w, v: enable_many(w.session, [w.target], concurrency=v),
    ),
    ("enable_many", "timeout"): (
        "seconds",
        lambda w, v: enable_many(w.session, [w.target], timeout=v),
    ),
    ("enable_many", "poll_interval"): (
        "seconds",
        lambda w, v: enable_many(w.session, [w.target], poll_interval=v),
    ),
    ("plan_network", "port"): ("port", lambda w, v: plan_network(w.facts, port=v)),
    ("read_vm_facts", "timeout"): (
        "seconds-or-none",
        lambda w, v: read_vm_facts(w.session, w.target, timeout=v),
    ),
}

#: Numbers in public signatures that are not options: results, facts and events the
#: library builds (users read them), exception attributes, and the caller's progress bar.
NOT_OPTIONS = {
    "ApplyResult",
    "AuthorizationError",
    "AzureRequestError",
    "BlockingConflict",
    "Diagnosis",
    "ExtensionFacts",
    "ExtensionState",
    "Finding",
    "FleetPlan",
    "FleetResult",
    "NetworkPlan",
    "NotFoundError",
    "OperationFailedError",
    "OsInfo",
    "PortInfo",
    "ProgressBar.update",
    "ProgressEvent",
    "ResourceGroupNotFoundError",
    "ThrottledError",
    "VmFacts",
    "VmNotFoundError",
    "VmPlan",
    "VmOutcome",
}
_NUMBER = re.compile(r"\b(int|float)\b")


def _numeric_parameters() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()

    def visit(name: str, fn: Any) -> None:
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            return
        for p in sig.parameters.values():
            text = str(p.annotation)
            if p.name != "self" and _NUMBER.search(text) and "Callable" not in text:
                found.add((name, p.name))

    for name in wac_azure.__all__:
        obj = getattr(wac_azure, name)
        if inspect.isclass(obj):
            if not issubclass(obj, BaseException):
                visit(name, obj)
            for attr, member in vars(obj).items():
                if not attr.startswith("_") and callable(getattr(obj, attr, None)):
                    visit(f"{name}.{attr}", getattr(obj, attr))
                del member
        elif inspect.isfunction(obj):
            visit(name, obj)
    return {(n, p) for n, p in found if n not in NOT_OPTIONS and n.split(".")[0] not in NOT_OPTIONS}


def test_the_table_names_every_public_numeric_option() -> None:
    assert _numeric_parameters() == set(CASES)


def _params() -> list[Any]:
    out = []
    for key, (kind, _call) in CASES.items():
        for value in BAD[kind]:
            out.append(pytest.param(key, value, id=f"{'.'.join(key)}={value!r}"))
    return out


async def _invoke(call: Call, w: World, value: Any) -> None:
    result = call(w, value)
    if inspect.isawaitable(result):
        await result
    elif isinstance(result, AzureSession):
        await result.close()


@pytest.mark.parametrize(("key", "value"), _params())
async def test_bad_numbers_are_refused_before_any_request(
    emu: ArmEmulator, key: tuple[str, str], value: Any
) -> None:
    target = emu.add_windows_vm("vm1", public_ip=True)
    async with emu.session() as session:
        facts = await read_vm_facts(session, target)
        w = World(emu, session, target, facts)
        sent = len(emu.requests)
        with pytest.raises(ConfigurationError) as info:
            await _invoke(CASES[key][1], w, value)
    assert isinstance(info.value, WacAzureError)
    assert isinstance(info.value, ValueError)
    assert key[1].split("_")[0] in str(info.value) or key[0].split(".")[0] in str(info.value)
    assert len(emu.requests) == sent, "the bad value reached Azure"
