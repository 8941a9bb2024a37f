"""Pure parts of the extension manager: URLs, hints, port sources, state views, desired body."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wac_azure import (
    ExtensionError,
    ExtensionState,
    InvalidInputError,
    NoPublicIpError,
    PortSource,
    VmTarget,
)
from wac_azure._azure.extension import new_salt
from wac_azure._core.extension import (
    LOG_LOCATIONS,
    desired_extension,
    extension_from_json,
    format_url,
    install_hints,
    port_info,
    url_for,
)
from wac_azure._core.facts import ExtensionFacts, NicFacts, PublicIpFacts, StatusFacts, VmFacts

T = VmTarget.parse(
    "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg"
    "/providers/Microsoft.Compute/virtualMachines/vm1"
)


@pytest.mark.parametrize(
    ("address", "port", "url"),
    [
        ("10.0.0.4", 6516, "https://10.0.0.4:6516"),
        ("2001:db8::4", 6516, "https://[2001:db8::4]:6516"),
        ("[2001:db8:0:0::5]", 443, "https://[2001:db8::5]:443"),
        (" 20.1.2.3 ", 6600, "https://20.1.2.3:6600"),
    ],
)
def test_format_url_brackets_ipv6(address: str, port: int, url: str) -> None:
    assert format_url(address, port) == url


@pytest.mark.parametrize(("address", "port"), [("vm1.example", 6516), ("10.0.0.4", 0)])
def test_format_url_rejects_bad_input(address: str, port: int) -> None:
    with pytest.raises(InvalidInputError):
        format_url(address, port)


def _facts(*, public: str | None = None, private: str = "10.0.0.4") -> VmFacts:
    pips = (PublicIpFacts(id="/pip", name="vm1-ip", address=public),) if public is not None else ()
    nic = NicFacts(id="/nic", name="vm1-nic", primary=True, private_ips=(private,), public_ips=pips)
    return VmFacts(target=T, vm_resource_id=str(T), location="westeurope", nics=(nic,))


def test_url_for_private_and_public() -> None:
    assert url_for(_facts(), 6516) == "https://10.0.0.4:6516"
    assert url_for(_facts(private="fd00::4"), 6516) == "https://[fd00::4]:6516"
    assert url_for(_facts(public="20.1.2.3"), 6600, via="public") == "https://20.1.2.3:6600"


@pytest.mark.parametrize("public", [None, ""])
def test_url_for_public_without_an_address(public: str | None) -> None:
    with pytest.raises(NoPublicIpError, match="no public IP"):
        url_for(_facts(public=public), 6516, via="public")


def test_port_info_sources() -> None:
    assert port_info(T, 6600, 6600).source is PortSource.REGISTRY
    assert port_info(T, 6600, None).source is PortSource.SETTINGS
    default = port_info(T, None, None)
    assert (default.port, default.source) == (6516, PortSource.DEFAULT)
    mismatch = port_info(T, 6516, 6700)
    assert mismatch.port == 6700
    assert mismatch.mismatch
    assert "SmePort says 6700" in str(mismatch)
    assert json.loads(json.dumps(mismatch.to_dict()))["source"] == "registry"
    modern = port_info(T, 6516, 6700, source=PortSource.APPSETTINGS, gateway="modern")
    assert (modern.port, modern.source, modern.gateway) == (6700, PortSource.APPSETTINGS, "modern")
    assert "appsettings.json says 6700" in str(modern)
    assert modern.to_dict()["source"] == "appsettings"
    assert modern.to_dict()["gateway"] == "modern"


def test_hints_name_the_service_tag_for_outbound_failures() -> None:
    hints = install_hints(
        [
            "Failed to connect to the Windows Admin Center service (WindowsAdminCenter "
            "service tag) over TCP 443"
        ]
    )
    assert any("WindowsAdminCenter service tag" in h for h in hints)
    assert any("https://wac.azure.com" in h for h in hints)
    assert hints[-1].startswith("If nothing seems wrong")


def test_hints_for_requirements_and_unknown_messages() -> None:
    assert any(
        "Windows Server 2016" in h for h in install_hints(["operating system not supported"])
    )
    generic = install_hints(["something odd"])
    assert any("wac-azure check" in h for h in generic)
    assert all("\\" not in h for h in generic)
    assert any("AdminCenter" in loc for loc in LOG_LOCATIONS)
    assert any("View Detailed Status" in loc for loc in LOG_LOCATIONS)


def _ext_json(port: object = "6516", state: str = "Succeeded") -> dict[str, object]:
    return {
        "name": "AdminCenter",
        "properties": {
            "publisher": "Microsoft.AdminCenter",
            "type": "AdminCenter",
            "typeHandlerVersion": "0.0",
            "autoUpgradeMinorVersion": True,
            "provisioningState": state,
            "settings": {"port": port, "salt": "abc"},
            "instanceView": {
                "typeHandlerVersion": "0.31.0.0",
                "statuses": [{"code": "ProvisioningState/succeeded", "level": "Info"}],
                "substatuses": [
                    {"code": "ComponentStatus/x", "level": "Error", "message": "<b>bad</b>"}
                ],
            },
        },
    }


@pytest.mark.parametrize(("raw", "port"), [("6516", 6516), (6600, 6600), ("junk", None)])
def test_extension_from_json_accepts_string_and_int_ports(raw: object, port: int | None) -> None:
    ext = extension_from_json(_ext_json(raw))
    assert ext.port == port
    assert ext.handler_version == "0.31.0.0"
    assert ext.is_admin_center
    assert ext.salt == "abc"


def test_state_views_escape_azure_text() -> None:
    state = ExtensionState.from_facts(T, extension_from_json(_ext_json()))
    assert state.succeeded
    assert not state.failed
    assert "port 6516" in str(state)
    assert "<b>bad</b>" in str(state)
    html = state._repr_html_()
    assert "&lt;b&gt;bad&lt;/b&gt;" in html
    assert "<b>bad</b>" not in html
    assert "<details>" in html
    doc = json.loads(json.dumps(state.to_dict()))
    assert doc["substatuses"][0]["message"] == "<b>bad</b>"
    absent = ExtensionState.from_facts(T, None)
    assert not absent.installed
    assert "not installed" in str(absent)


def _with_ext(ext: ExtensionFacts | None, *others: ExtensionFacts) -> VmFacts:
    return VmFacts(
        target=T,
        vm_resource_id=str(T),
        location="westeurope",
        extension=ext,
        other_extensions=others,
    )


def _ext(**kw: object) -> ExtensionFacts:
    base: dict[str, object] = {
        "name": "AdminCenter",
        "publisher": "Microsoft.AdminCenter",
        "type": "AdminCenter",
        "provisioning_state": "Succeeded",
        "port": 6516,
        "salt": "s1",
        "settings": {"port": "6516", "salt": "s1"},
    }
    base.update(kw)
    return ExtensionFacts(**base)  # type: ignore[arg-type]


def desired(facts: VmFacts, port: int, proxy: Any = None) -> dict[str, Any] | None:
    return desired_extension(facts, port=port, salt=None, proxy=proxy, new_salt=new_salt)


def test_desired_body_matches_azure_facts() -> None:
    body = desired(_with_ext(None), 6516, None)
    assert body is not None
    assert body["location"] == "westeurope"
    props = body["properties"]
    assert props["publisher"] == "Microsoft.AdminCenter"
    assert props["type"] == "AdminCenter"
    assert props["typeHandlerVersion"] == "0.0"
    assert props["autoUpgradeMinorVersion"] is True
    assert props["settings"]["port"] == "6516"  # a string, as Microsoft's docs write it
    salt = props["settings"]["salt"]
    assert len(salt) == 32
    assert int(salt, 16) >= 0
    other = desired(_with_ext(None), 6516, None)
    assert other is not None
    assert other["properties"]["settings"]["salt"] != salt


def test_desired_is_none_when_nothing_changes_and_keeps_the_salt() -> None:
    assert desired(_with_ext(_ext()), 6516, None) is None
    moved = desired(_with_ext(_ext()), 6600, None)
    assert moved is not None
    assert moved["properties"]["settings"] == {"port": "6600", "salt": "s1"}
    for state in ("Failed", "Canceled"):
        redo = desired(_with_ext(_ext(provisioning_state=state)), 6516, None)
        assert redo is not None  # a failed or canceled install is written again
    proxy = {"mode": "application", "address": "http://proxy.example:3128"}
    with_proxy = desired(_with_ext(_ext()), 6516, proxy)
    assert with_proxy is not None
    assert with_proxy["properties"]["settings"]["proxy"] == proxy


def test_desired_refuses_foreign_or_duplicate_extensions() -> None:
    with pytest.raises(ExtensionError, match="publisher or type"):
        desired(_with_ext(_ext(publisher="Contoso")), 6516, None)
    with pytest.raises(ExtensionError, match="under the name 'wac'"):
        desired(_with_ext(None, _ext(name="wac")), 6516, None)


def test_status_facts_are_the_facts_type() -> None:
    ext = extension_from_json(_ext_json())
    assert all(isinstance(s, StatusFacts) for s in ext.substatuses)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -1.0, 0, True, "60"])
def test_a_timeout_must_be_finite_and_positive(bad: object) -> None:
    from wac_azure import ConfigurationError
    from wac_azure._core.validate import check_timeout

    with pytest.raises(ConfigurationError, match="finite positive number of seconds"):
        check_timeout(bad)
    assert check_timeout(0.5) == 0.5


async def test_enable_refuses_a_nan_timeout_before_any_request() -> None:
    from wac_azure import ConfigurationError, enable
    from wac_azure.testing import ArmEmulator

    emu = ArmEmulator(seed=0)
    target = emu.add_windows_vm("vm1")
    async with emu.session() as session:
        with pytest.raises(ConfigurationError):
            await enable(session, target, timeout=float("nan"))
    assert not emu.writes()
