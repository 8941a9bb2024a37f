"""One parser for extension JSON and ARM ids, whichever module asks."""

from __future__ import annotations

from typing import Any

import pytest

from wac_azure._azure.rules import _parts
from wac_azure._core.extension import extension_from_json
from wac_azure._core.facts import parse_extensions, split_resource_id

PROPS: dict[str, Any] = {
    "publisher": "Microsoft.AdminCenter",
    "type": "AdminCenter",
    "typeHandlerVersion": "0.0",
    "autoUpgradeMinorVersion": True,
    "provisioningState": "Failed",
    "settings": {"port": " 6600 ", "salt": "s1"},
}
VIEW: dict[str, Any] = {
    "name": "AdminCenter",
    "type": "Microsoft.AdminCenter.AdminCenter",
    "typeHandlerVersion": "0.31.0.0",
    "statuses": [{"code": "ProvisioningState/failed", "level": "Error", "message": "boom"}],
    "substatuses": [{"code": "ComponentStatus/x", "level": "Error", "message": "<b>x</b>"}],
}
EXT_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"


def test_extension_get_and_vm_get_parse_alike() -> None:
    alone = extension_from_json(
        {
            "id": EXT_ID + "/extensions/AdminCenter",
            "name": "AdminCenter",
            "properties": {**PROPS, "instanceView": VIEW},
        }
    )
    vm = {
        "resources": [
            {"id": EXT_ID + "/extensions/AdminCenter", "name": "AdminCenter", "properties": PROPS}
        ],
        "properties": {"instanceView": {"extensions": [VIEW]}},
    }
    (inside,) = parse_extensions(vm)
    assert alone == inside
    assert alone.settings == inside.settings
    assert alone.port == 6600
    assert alone.handler_version == "0.31.0.0"
    assert alone.auto_upgrade is True
    assert [s.message for s in alone.substatuses] == ["<b>x</b>"]


@pytest.mark.parametrize("port", [True, 0, 70000, "x", None])
def test_bad_port_settings_are_none(port: object) -> None:
    ext = extension_from_json({"name": "AdminCenter", "properties": {"settings": {"port": port}}})
    assert ext.port is None


def test_planner_parts_use_the_shared_id_parser() -> None:
    nsg = "/subscriptions/S/resourceGroups/RG/providers/Microsoft.Network/networkSecurityGroups/n1"
    assert split_resource_id(nsg) == ("S", "RG", [("networkSecurityGroups", "n1")])
    assert _parts(nsg) == ("S", "RG", "n1")
    with pytest.raises(ValueError, match="not an ARM resource id"):
        _parts("/subscriptions/S/resourceGroups/RG")
