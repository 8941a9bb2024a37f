"""Secrets never leak: not in logs, not in results, not in exception messages.

Not in logs (any logger, DEBUG, azure-core's network trace on), not in
``repr``/``str``/``to_dict()``/``_repr_html_()`` of any result, not in exception messages.

Sentinels: the emulator's bearer token, a wrong bearer token, a proxy password, an
extension's ``protectedSettings`` and a password parameter of a Run Command.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import attrs
import pytest

import wac_azure
from wac_azure import (
    AzureSession,
    ExtensionManager,
    InvalidInputError,
    PublicAccess,
    RequirementChecker,
    VmTarget,
    WacAzureError,
    diagnose,
    disable,
    disable_many,
    enable,
    enable_many,
    read_vm_facts,
)
from wac_azure.testing import ArmEmulator, StaticTokenCredential

PROXY_PASSWORD = "S3NT1NEL"
PROXY = f"http://user:{PROXY_PASSWORD}@proxy:3128"
PROTECTED = "PR0TECTED-S3NT1NEL-7f3a"
RC_PASSWORD = "RC-PASSW0RD-S3NT1NEL-91c2"
WRONG_TOKEN = "WR0NG-T0KEN-S3NT1NEL-55d1"


class _Everything(logging.Handler):
    """Keeps every record of every logger, formatted with its traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.texts: list[str] = []
        self.formatter_ = logging.Formatter("%(name)s %(levelname)s %(message)s")

    def emit(self, record: logging.LogRecord) -> None:
        self.texts.append(self.formatter_.format(record))


@pytest.fixture
def all_logs() -> Iterator[_Everything]:
    root = logging.getLogger()
    handler = _Everything()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    # Every logger that exists now logs at DEBUG too (azure.*, wac_azure.*, aiohttp...).
    touched = []
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            touched.append((logger, logger.level, logger.disabled))
            logger.setLevel(logging.DEBUG)
            logger.disabled = False
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)
        for logger, level, disabled in touched:
            logger.setLevel(level)
            logger.disabled = disabled


def _texts(obj: Any) -> list[str]:
    out = [repr(obj), str(obj)]
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict):
        out.append(json.dumps(to_dict(), default=str))
    html = getattr(obj, "_repr_html_", None)
    if callable(html):
        out.append(html())
    return out


def _exception_texts(exc: BaseException) -> list[str]:
    out = []
    seen = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:  # the whole chain, as a traceback shows it
        seen.add(id(e))
        out += [str(e), repr(e), *(str(a) for a in e.args)]
        e = e.__cause__ or e.__context__
    return out


def _assert_clean(texts: list[str], secrets: list[str]) -> None:
    for secret in secrets:
        hits = [t for t in texts if secret in t]
        assert not hits, f"{secret!r} leaked in: {hits[0][:400]}"


def _seed_extensions(emu: ArmEmulator, target: VmTarget) -> None:
    """An AdminCenter extension and another one, both with protectedSettings stored."""
    for name, publisher, type_ in (
        ("AdminCenter", "Microsoft.AdminCenter", "AdminCenter"),
        ("CustomScript", "Microsoft.Compute", "CustomScriptExtension"),
    ):
        emu.seed(
            {
                "id": f"{target.resource_id}/extensions/{name}",
                "name": name,
                "type": "Microsoft.Compute/virtualMachines/extensions",
                "location": "westeurope",
                "properties": {
                    "publisher": publisher,
                    "type": type_,
                    "typeHandlerVersion": "0.0",
                    "autoUpgradeMinorVersion": True,
                    "provisioningState": "Succeeded",
                    "settings": {"port": "6516", "salt": "abc"},
                    "protectedSettings": {"password": PROTECTED, "token": PROTECTED},
                },
            }
        )


async def test_no_secret_in_logs_results_or_errors(all_logs: _Everything) -> None:
    emu = ArmEmulator(seed=11)
    vm1 = emu.add_windows_vm("vm1", nsg="nic", public_ip=True)
    vm2 = emu.add_windows_vm("vm2", nsg="subnet", public_ip=True)
    vm3 = emu.add_windows_vm("vm3", nsg="both")
    _seed_extensions(emu, vm1)
    secrets = [emu.token, PROXY_PASSWORD, PROTECTED, RC_PASSWORD, WRONG_TOKEN]
    texts: list[str] = []
    errors: list[BaseException] = []

    async with emu.session(client_kwargs={"logging_enable": True}) as session:
        texts += _texts(session)
        manager = ExtensionManager(session)
        facts = await read_vm_facts(session, vm1)
        texts += _texts(facts)
        texts += _texts(facts.extension)
        texts += [repr(e) for e in facts.other_extensions]
        texts += _texts(await manager.status(vm1))

        with pytest.raises(InvalidInputError) as refused:
            await manager.install(vm1, proxy=PROXY)
        errors.append(refused.value)
        with pytest.raises(InvalidInputError) as refused_map:
            await manager.install(vm1, proxy={"mode": "application", "address": PROXY})
        errors.append(refused_map.value)

        texts += _texts(await manager.install(vm1, proxy="http://proxy.example:3128"))
        texts += _texts(await manager.locate_port(vm1))
        texts += _texts(await enable(session, vm2, access=PublicAccess(["203.0.113.7"])))
        texts += _texts(await diagnose(session, vm1))
        fleet = await enable_many(session, [vm1, vm2, vm3])
        texts += _texts(fleet)
        texts += [t for o in fleet.outcomes for t in _texts(o)]
        texts += _texts(await disable(session, vm2))
        texts += _texts(await disable_many(session, [vm1, vm3]))

        # A password parameter in a Run Command body, through the session's own client.
        compute = session.compute(vm3.subscription_id)
        poller = await compute.virtual_machines.begin_run_command(
            vm3.resource_group,
            vm3.name,
            {
                "commandId": "RunPowerShellScript",
                "script": ["# wac-azure-guest-script: port v1"],
                "parameters": [{"name": "AdminPassword", "value": RC_PASSWORD}],
            },
        )
        await poller.result()

    # A wrong bearer token: refused (401), and the token appears nowhere.
    bad = AzureSession(
        StaticTokenCredential(WRONG_TOKEN),
        base_url=session.base_url,
        transport=emu.transport(),
        client_kwargs={"logging_enable": True},
    )
    async with bad:
        with pytest.raises(WacAzureError) as denied:
            await read_vm_facts(bad, vm1)
        errors.append(denied.value)
        with pytest.raises(WacAzureError) as denied_status:
            await ExtensionManager(bad).status(vm1)
        errors.append(denied_status.value)
    assert any("401" in t or "uthenticat" in t for t in _exception_texts(denied.value))

    for exc in errors:
        texts += _exception_texts(exc)
    assert "credentials" in str(refused.value)

    # The trace really was on (so the check below means something) and redacted.
    trace = [t for t in all_logs.texts if "Request headers:" in t]
    assert trace, "azure-core's network trace did not log: the test would prove nothing"
    assert any("'Authorization': 'REDACTED'" in t for t in trace)
    assert any("AdminPassword" in t and "REDACTED" in t for t in all_logs.texts)
    _assert_clean(all_logs.texts, secrets)
    _assert_clean(texts, secrets)


async def test_http_logging_policy_never_shows_the_token_at_info(
    emu: ArmEmulator, all_logs: _Everything
) -> None:
    """azure-core's ARMHttpLoggingPolicy (INFO, always on) redacts headers not allowed."""
    t = emu.add_windows_vm("vm1")
    async with emu.session() as session:
        await read_vm_facts(session, t)
    assert any("Request URL" in x for x in all_logs.texts)
    _assert_clean(all_logs.texts, [emu.token])


def test_redaction_helpers() -> None:
    from wac_azure._azure.redact import redact_json, redact_text

    doc = {
        "properties": {
            "settings": {"port": "6516"},
            "protectedSettings": {"anything": "x"},
            "parameters": [
                {"name": "Port", "value": "6516"},
                {"name": "ServicePassword", "value": "p"},
            ],
            "protectedParameters": [{"name": "a", "value": "b"}],
            "adminPassword": "q",
        }
    }
    out = redact_json(doc)["properties"]
    assert out["settings"] == {"port": "6516"}
    assert out["protectedSettings"] == "REDACTED"
    assert out["parameters"] == [
        {"name": "Port", "value": "6516"},
        {"name": "ServicePassword", "value": "REDACTED"},
    ]
    assert out["protectedParameters"] == "REDACTED"
    assert out["adminPassword"] == "REDACTED"
    assert redact_text("Authorization: Bearer abc.def-ghi") == "Authorization: Bearer REDACTED"
    assert redact_text("proxy http://u:pw@h:3128 x") == "proxy http://REDACTED@h:3128 x"
    assert redact_text("not json {") == "not json {"


@pytest.mark.parametrize(
    "proxy",
    [
        PROXY,
        f"https://user:{PROXY_PASSWORD}@proxy.example",
        f"http://{PROXY_PASSWORD}@proxy:3128",
        {"address": f"http://u:{PROXY_PASSWORD}@p:1"},
    ],
)
async def test_proxy_credentials_are_refused_before_any_request(
    emu: ArmEmulator, session: AzureSession, proxy: Any
) -> None:
    """Public settings are readable by every VM reader: a password there is refused."""
    t = emu.add_windows_vm("vm1")
    with pytest.raises(InvalidInputError) as info:
        await ExtensionManager(session).install(t, proxy=proxy)
    _assert_clean(_exception_texts(info.value), [PROXY_PASSWORD])
    assert "credentials" in str(info.value)
    assert emu.requests == []


async def test_azure_cores_own_trace_would_leak_the_token(
    emu: ArmEmulator, all_logs: _Everything
) -> None:
    """The control: with azure-core's plain NetworkTraceLoggingPolicy the bearer token is
    logged at DEBUG; that is why AzureSession installs the redacting policy by default."""
    from azure.core.pipeline.policies import NetworkTraceLoggingPolicy

    t = emu.add_windows_vm("vm1")
    plain = NetworkTraceLoggingPolicy(logging_enable=True)
    async with emu.session(client_kwargs={"logging_enable": True, "logging_policy": plain}) as s:
        await read_vm_facts(s, t)
    assert any(emu.token in x for x in all_logs.texts)


# -- a planted secret through whole runs -----------------------------------------------------

PLANTED = "PL4NTED-S3CRET-c0ffee"


class _ChattyCredential:
    """A careless credential: its repr and attributes carry the token itself."""

    def __init__(self, token: str) -> None:
        self.token = token
        self._inner = StaticTokenCredential(token)

    async def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        return await self._inner.get_token(*scopes, **kwargs)

    async def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"_ChattyCredential(token={self.token!r})"


def _public_objects(root: object) -> list[object]:
    """``root`` and every public object reachable through its attrs fields, tuples,
    lists and mappings (facts, NICs, extensions, reports, checks, plans, rule changes,
    outcomes, findings, states...)."""
    public = tuple(
        cls
        for cls in (getattr(wac_azure, n) for n in wac_azure.__all__)
        if inspect.isclass(cls) and not getattr(cls, "_is_protocol", False)
    )
    out: list[object] = []
    seen: set[int] = set()
    todo = [root]
    while todo:
        obj = todo.pop()
        if id(obj) in seen or obj is None or isinstance(obj, (str, bytes, int, float)):
            continue
        seen.add(id(obj))
        if isinstance(obj, public) and not isinstance(obj, BaseException):
            out.append(obj)
        if attrs.has(type(obj)):
            todo += [getattr(obj, f.name) for f in attrs.fields(type(obj))]
        elif isinstance(obj, Mapping):
            todo += list(obj.values())
        elif isinstance(obj, (list, tuple)):
            todo += list(obj)
    return out


async def test_a_planted_secret_reaches_no_log_and_no_public_object(
    all_logs: _Everything,
) -> None:
    """The secret is planted three ways: a proxy password (and a token) in the public
    settings of an AdminCenter extension someone else installed, as the bearer token of a
    credential whose repr shows it, and as a Run Command parameter; then a whole enable /
    diagnose / fleet / disable runs with every logger at DEBUG and azure-core's network
    trace on."""
    emu = ArmEmulator(seed=12)
    emu.token = PLANTED  # the bearer token the credential carries
    vm1 = emu.add_windows_vm("vm1", nsg="nic", public_ip=True)
    vm2 = emu.add_windows_vm("vm2", nsg="both", public_ip=True)
    emu.seed(
        {
            "id": f"{vm1.resource_id}/extensions/AdminCenter",
            "name": "AdminCenter",
            "type": "Microsoft.Compute/virtualMachines/extensions",
            "location": "westeurope",
            "properties": {
                "publisher": "Microsoft.AdminCenter",
                "type": "AdminCenter",
                "typeHandlerVersion": "0.0",
                "autoUpgradeMinorVersion": True,
                "provisioningState": "Succeeded",
                "settings": {
                    "port": "6516",
                    "salt": "abc",
                    "proxy": {"mode": "application", "address": f"http://u:{PLANTED}@p:3128"},
                    "proxyToken": PLANTED,
                    "other": f"https://{PLANTED}@host.example/x",
                },
                "protectedSettings": {"password": PLANTED},
            },
        }
    )
    roots: list[object] = []
    errors: list[BaseException] = []
    session = AzureSession(
        _ChattyCredential(PLANTED),
        base_url="https://arm.emulator.localhost",
        transport=emu.transport(),
        client_kwargs={"logging_enable": True},
    )
    async with session:
        compute = session.compute(vm1.subscription_id)
        # Run Command parameters: the action (v1) and a managed run command (v2).
        poller = await compute.virtual_machines.begin_run_command(
            vm1.resource_group,
            vm1.name,
            {
                "commandId": "RunPowerShellScript",
                "script": ["# wac-azure-guest-script: port v1"],
                "parameters": [{"name": "ServicePassword", "value": PLANTED}],
            },
        )
        await poller.result()
        managed = await compute.virtual_machine_run_commands.begin_create_or_update(
            vm1.resource_group,
            vm1.name,
            "planted",
            {
                "location": "westeurope",
                "properties": {
                    "source": {"script": "Write-Output ok"},
                    "parameters": [{"name": "ApiToken", "value": PLANTED}],
                    "protectedParameters": [{"name": "x", "value": PLANTED}],
                },
            },
        )
        await managed.result()

        facts = await read_vm_facts(session, vm1)
        assert PLANTED in json.dumps(dict(facts.extension.settings)), "not planted"  # type: ignore[union-attr]
        roots += [facts, await ExtensionManager(session).status(vm1)]
        roots.append(await RequirementChecker(session).check(vm1))
        roots.append(await enable(session, vm1, access=PublicAccess(["203.0.113.7"])))
        roots.append(await diagnose(session, vm1, via="public", client_ip="203.0.113.7"))
        roots.append(await enable_many(session, [vm1, vm2]))
        roots.append(await diagnose(session, vm2))
        roots.append(await disable(session, vm2))
        with pytest.raises(InvalidInputError) as refused:
            await enable(session, vm2, proxy=f"http://u:{PLANTED}@p:3128")
        errors.append(refused.value)
        roots.append(await disable_many(session, [vm1]))

    texts = [repr(session)]
    objects = [o for root in roots for o in _public_objects(root)]
    assert len({type(o).__name__ for o in objects}) >= 15, "the walk reached too little"
    for obj in objects:
        texts += _texts(obj)
    for exc in errors:
        texts += _exception_texts(exc)
    trace = [t for t in all_logs.texts if "Request headers:" in t]
    assert trace, "azure-core's network trace did not log: the test would prove nothing"
    assert any("ServicePassword" in t for t in trace)
    assert any("runCommands/planted" in t for t in trace)
    assert any("Request URL" in t for t in all_logs.texts)  # the http logging policy
    _assert_clean(all_logs.texts, [PLANTED])
    _assert_clean(texts, [PLANTED])
