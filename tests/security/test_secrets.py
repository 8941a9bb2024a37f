"""Secrets never leak: not in logs, not in results, not in exception messages.

Not in logs (any logger, DEBUG, azure-core's network trace on), not in
``repr``/``str``/``to_dict()``/``_repr_html_()`` of any result, not in exception messages.

Sentinels: the emulator's bearer token, a wrong bearer token, a proxy password, an
extension's ``protectedSettings`` and a password parameter of a Run Command.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from wac_azure import (
    AzureSession,
    ExtensionManager,
    InvalidInputError,
    PublicAccess,
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
