"""The same LRO-heavy flows through both fronts: in-process transport and HTTPS on loopback."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator

import pytest
from azure.core.exceptions import HttpResponseError

from wac_azure import AzureSession
from wac_azure.testing import DEFAULT_SUBSCRIPTION, ArmEmulator

SUB = DEFAULT_SUBSCRIPTION


@contextlib.asynccontextmanager
async def front(emu: ArmEmulator, kind: str) -> AsyncIterator[AzureSession]:
    if kind == "in-process":
        async with emu.session() as session:
            yield session
    else:
        async with emu.serve() as srv, srv.session(polling_interval=0.01) as session:
            yield session


@pytest.mark.parametrize("kind", ["in-process", "https"])
async def test_install_rule_and_run_command_on_both_fronts(kind: str) -> None:
    emu = ArmEmulator(page_size=1)
    target = emu.add_windows_vm("vm1")
    emu.add_windows_vm("vm2", os="2012-R2")
    async with front(emu, kind) as session:
        compute, network = session.compute(SUB), session.network(SUB)
        body = {
            "location": "westeurope",
            "properties": {
                "publisher": "Microsoft.AdminCenter",
                "type": "AdminCenter",
                "typeHandlerVersion": "0.0",
                "settings": {"port": "6516"},
            },
        }
        ext = await (
            await compute.virtual_machine_extensions.begin_create_or_update(
                "rg-wac", "vm1", "AdminCenter", body
            )
        ).result()
        assert ext.provisioning_state == "Succeeded"
        with pytest.raises(HttpResponseError) as info:
            await (
                await compute.virtual_machine_extensions.begin_create_or_update(
                    "rg-wac", "vm2", "AdminCenter", body
                )
            ).result()
        assert "2016" in str(info.value)
        rule = {
            "properties": {
                "protocol": "Tcp",
                "access": "Allow",
                "direction": "Inbound",
                "priority": 150,
                "sourceAddressPrefix": "VirtualNetwork",
                "sourcePortRange": "*",
                "destinationAddressPrefix": "*",
                "destinationPortRange": "6516",
            }
        }
        await (
            await network.security_rules.begin_create_or_update("rg-wac", "vm1-nsg", "wac", rule)
        ).result()
        run = {"commandId": "RunPowerShellScript", "script": ["# wac-azure-guest-script: port v2"]}
        result = await (
            await compute.virtual_machines.begin_run_command("rg-wac", "vm1", run)
        ).result()
        doc = json.loads(result.as_dict()["value"][0]["message"])
        assert doc["appSettings"]["url"] == "https://*:6516"
        names = [vm.name async for vm in compute.virtual_machines.list("rg-wac")]
        assert names == ["vm1", "vm2"]
    assert emu.guest(target).port == "6516"
    assert any("$skiptoken" in r.query for r in emu.requests)
