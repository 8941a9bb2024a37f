"""A fleet's address record (the NIC tag ``wac_azure-rule-addresses``, docs/security.md
"Stale addresses") costs one NIC write per VM and no read: the PUT sends the NIC as its
group's list showed it, guarded by that listing's etag (``If-Match``). Another writer
changing the NIC in between makes it a 412, and the record is written again on a fresh
read, keeping what the other writer wrote (issue #18: reads per VM)."""

from __future__ import annotations

import re
from typing import Any

from wac_azure import PrivateAccess, enable_many
from wac_azure.testing import ArmEmulator

from tests.workflows._worlds import InFlightCounting

ONPREM = PrivateAccess(sources=("10.10.0.0/16",))  # the rules name each VM's address
TAG = "wac_azure-rule-addresses"
NIC = re.compile(r"/networkInterfaces/[^/]+$")


def _nic_requests(emu: ArmEmulator, method: str) -> list[Any]:
    return [r for r in emu.requests if r.method == method and NIC.search(r.path)]


async def test_the_record_is_written_from_the_listed_nic_without_a_get() -> None:
    emu = ArmEmulator(seed=0)
    targets = [emu.add_windows_vm(f"vm{i}", resource_group=f"rg-{i % 2}") for i in range(6)]
    listed_etags = {}
    for t in targets:
        nic_id = (
            f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}"
            f"/providers/Microsoft.Network/networkInterfaces/{t.name}-nic"
        )
        listed_etags[nic_id.lower()] = emu.resource(nic_id)["etag"]
    async with emu.session() as session:
        result = await enable_many(session, targets, access=ONPREM)
    assert result.ok, result.summary()
    puts = _nic_requests(emu, "PUT")
    assert len(puts) == len(targets)
    assert _nic_requests(emu, "GET") == []  # (one GET per VM before)
    # written back at the api-version it was read with (a newer one could reset what
    # the older one does not show)
    (listed_version,) = {
        r.query["api-version"]
        for r in emu.requests
        if r.method == "GET" and r.path.endswith("/networkInterfaces")
    }
    for put in puts:
        assert put.request_headers.get("if-match") == listed_etags[put.path.lower()]
        assert put.status == 200
        assert put.query["api-version"] == listed_version
    for t in targets:
        nic = emu.resource(
            f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}"
            f"/providers/Microsoft.Network/networkInterfaces/{t.name}-nic"
        )
        address = nic["properties"]["ipConfigurations"][0]["properties"]["privateIPAddress"]
        assert nic["tags"][TAG] == address


class _OtherWriter(ArmEmulator):
    """Before the first record PUT reaches a NIC, someone else tags that NIC."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.touched: set[str] = set()

    async def handle(self, req: Any) -> Any:
        if req.method == "PUT" and NIC.search(req.path) and req.path not in self.touched:
            self.touched.add(req.path)
            nic = self.resource(req.path)
            nic["tags"] = {**(nic.get("tags") or {}), "owner": "platform-team"}
            nic["etag"] = 'W/"changed-by-another-writer"'
            self.seed(nic)
        return await super().handle(req)


async def test_a_nic_changed_after_its_listing_is_read_again_and_keeps_the_other_tag() -> None:
    emu = _OtherWriter(seed=0)
    targets = [emu.add_windows_vm(f"vm{i}") for i in range(3)]
    async with emu.session() as session:
        result = await enable_many(session, targets, access=ONPREM)
    assert result.ok, result.summary()
    puts = _nic_requests(emu, "PUT")
    assert sorted(p.status for p in puts) == [200, 200, 200, 412, 412, 412]
    assert len(_nic_requests(emu, "GET")) == 3  # one fresh read per NIC after its 412
    for t in targets:
        nic = emu.resource(
            f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}"
            f"/providers/Microsoft.Network/networkInterfaces/{t.name}-nic"
        )
        assert nic["tags"]["owner"] == "platform-team"
        assert TAG in nic["tags"]


async def test_records_wait_as_data_and_go_out_a_few_at_a_time() -> None:
    # 40 VMs whose rules are in at once: their records are decided then, but written at
    # most RECORD_PARALLEL at a time per subscription (each one sent at once would hold a
    # request and its pipeline while it waits in the write bucket: at ten thousand VMs,
    # most of the run's memory; docs/performance.md)
    from wac_azure import PacingConfig
    from wac_azure._workflows.fleet.rules import RECORD_PARALLEL

    emu = InFlightCounting(method="PUT", path=NIC.pattern, seed=0, latency=0.05)
    targets = [emu.add_windows_vm(f"vm{i:02d}", nsg="subnet") for i in range(40)]
    pacing = PacingConfig(writes=(1000, 1000.0), reads=(1000, 1000.0))
    async with emu.session(pacing=pacing) as session:
        result = await enable_many(session, targets, access=ONPREM)
    assert result.ok, result.summary()
    assert len(_nic_requests(emu, "PUT")) == 40  # every record written
    assert 1 <= emu.peak <= RECORD_PARALLEL, emu.peak
