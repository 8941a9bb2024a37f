"""OS detection from imageReference, instance view and osDisk (AZURE_FACTS §2)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wac_azure._core.facts import parse_os

from tests._shared import ARM_FIXTURES

FIXTURES = ARM_FIXTURES


def vm(
    image: dict[str, Any] | None = None,
    os_name: str | None = None,
    os_version: str | None = None,
    os_type: str | None = None,
) -> dict[str, Any]:
    storage: dict[str, Any] = {}
    if image is not None:
        storage["imageReference"] = image
    if os_type is not None:
        storage["osDisk"] = {"osType": os_type}
    iv: dict[str, Any] = {}
    if os_name is not None:
        iv["osName"] = os_name
    if os_version is not None:
        iv["osVersion"] = os_version
    return {"properties": {"storageProfile": storage, "instanceView": iv}}


def ws(sku: str) -> dict[str, str]:
    return {"publisher": "MicrosoftWindowsServer", "offer": "WindowsServer", "sku": sku}


CASES = [
    # (id, vm json, family, kind, release, source)
    ("2016-image", vm(ws("2016-Datacenter")), "windows", "server", "2016", "imageReference"),
    (
        "2019-gensecond",
        vm(ws("2019-Datacenter-gensecond")),
        "windows",
        "server",
        "2019",
        "imageReference",
    ),
    (
        "2022-azure-edition",
        vm(ws("2022-datacenter-azure-edition")),
        "windows",
        "server",
        "2022",
        "imageReference",
    ),
    (
        "2025",
        vm(ws("2025-datacenter-azure-edition")),
        "windows",
        "server",
        "2025",
        "imageReference",
    ),
    ("2012-R2", vm(ws("2012-R2-Datacenter")), "windows", "server", "2012-R2", "imageReference"),
    (
        "lowercase-publisher",
        vm(
            {
                "publisher": "microsoftwindowsserver",
                "offer": "windowsserver",
                "sku": "2019-datacenter",
            }
        ),
        "windows",
        "server",
        "2019",
        "imageReference",
    ),
    (
        "windows-11-image",
        vm(
            {"publisher": "MicrosoftWindowsDesktop", "offer": "windows-11", "sku": "win11-24h2-pro"}
        ),
        "windows",
        "client",
        "11",
        "imageReference",
    ),
    (
        "windows-10-image",
        vm(
            {"publisher": "MicrosoftWindowsDesktop", "offer": "Windows-10", "sku": "win10-22h2-ent"}
        ),
        "windows",
        "client",
        "10",
        "imageReference",
    ),
    (
        "sql-on-ws2022",
        vm({"publisher": "MicrosoftSQLServer", "offer": "sql2019-ws2022", "sku": "enterprise"}),
        "windows",
        "server",
        "2022",
        "imageReference",
    ),
    (
        "ubuntu",
        vm({"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy", "sku": "22_04-lts"}),
        "linux",
        None,
        None,
        "imageReference",
    ),
    (
        "custom-image-os-name-only",
        vm(
            {"id": "/subscriptions/x/resourceGroups/r/providers/Microsoft.Compute/images/golden"},
            os_name="Windows Server 2019 Datacenter",
            os_version="10.0.17763.6414",
        ),
        "windows",
        "server",
        "2019",
        "instanceView",
    ),
    (
        "custom-image-build-only",
        vm({"id": "/subscriptions/x/images/golden"}, os_version="10.0.20348.1", os_type="Windows"),
        "windows",
        None,
        None,
        "instanceView",
    ),
    (
        "custom-image-nothing",
        vm({"id": "/subscriptions/x/images/golden"}),
        None,
        None,
        None,
        "unknown",
    ),
    ("os-type-only-windows", vm(os_type="Windows"), "windows", None, None, "osDisk"),
    ("os-type-only-linux", vm(os_type="Linux"), "linux", None, None, "osDisk"),
    (
        "in-place-upgrade",
        vm(ws("2012-R2-Datacenter"), "Windows Server 2019 Datacenter", "10.0.17763.1"),
        "windows",
        "server",
        "2019",
        "instanceView",
    ),
    (
        "server-name-without-year-uses-build",
        vm(None, "Windows Server Datacenter", "10.0.26100.1"),
        "windows",
        "server",
        "2025",
        "instanceView",
    ),
    (
        "2012r2-by-name",
        vm(None, "Windows Server 2012 R2 Datacenter", "6.3.9600.21620"),
        "windows",
        "server",
        "2012-R2",
        "instanceView",
    ),
    (
        "windows-11-reports-windows-10",
        vm(None, "Windows 10 Enterprise", "10.0.22631.4317"),
        "windows",
        "client",
        "11",
        "instanceView",
    ),
    (
        "build-plus-server-image",
        vm(ws("2016-Datacenter"), None, "10.0.14393.7428"),
        "windows",
        "server",
        "2016",
        "instanceView",
    ),
    ("linux-agent", vm(None, "ubuntu", "22.04"), "linux", None, None, "instanceView"),
    ("nothing", vm(), None, None, None, "unknown"),
]


@pytest.mark.parametrize(
    ("doc", "family", "kind", "release", "source"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_os_detection(
    doc: dict[str, Any], family: str | None, kind: str | None, release: str | None, source: str
) -> None:
    info = parse_os(doc)
    assert (info.family, info.kind, info.release, info.source) == (family, kind, release, source)


def test_evidence_records_every_field_seen() -> None:
    info = parse_os(
        vm(ws("2012-R2-Datacenter"), "Windows Server 2019 Datacenter", "10.0.17763.1", "Windows")
    )
    text = " | ".join(info.evidence)
    assert "2012-R2-Datacenter" in text
    assert "Windows Server 2019 Datacenter" in text
    assert "10.0.17763.1" in text
    assert "osDisk.osType Windows" in text
    assert info.build == 17763


def test_custom_image_evidence_names_the_image() -> None:
    info = parse_os(vm({"id": "/subscriptions/x/images/golden"}))
    assert info.family is None
    assert any("golden" in e for e in info.evidence)


def test_real_fixture_vm_is_2016() -> None:
    body = json.loads((FIXTURES / "compute.VirtualMachine_Get.json").read_text())["responses"][
        "200"
    ]["body"]
    iv = json.loads((FIXTURES / "compute.VirtualMachine_Get_InstanceView.json").read_text())[
        "responses"
    ]["200"]["body"]
    assert parse_os(body).release == "2016"
    body["properties"]["instanceView"] = iv
    info = parse_os(body)
    assert (info.kind, info.release, info.build, info.source) == (
        "server",
        "2016",
        14393,
        "instanceView",
    )


@pytest.mark.parametrize(
    "doc",
    [
        None,
        7,
        "x",
        [],
        {"properties": None},
        {"properties": {"storageProfile": []}},
        {"properties": {"instanceView": {"osName": 5, "osVersion": None}}},
        {"properties": {"storageProfile": {"imageReference": {"publisher": None, "sku": 2019}}}},
    ],
)
def test_junk_is_unknown_not_an_exception(doc: Any) -> None:
    info = parse_os(doc)
    assert info.family is None
    assert info.source == "unknown"
