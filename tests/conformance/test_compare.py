"""The parity comparison: what it treats as shape, what as value, and how it reports."""

from __future__ import annotations

from .parity import (
    Deviation,
    Difference,
    compare,
    compare_headers,
    compare_json,
    reconcile,
    url_shape,
)

SUB = "/subscriptions/00000000-0000-0000-0000-000000000000"
OTHER = "/subscriptions/11111111-2222-3333-4444-555555555555"
OPS = f"https://management.azure.com{SUB}/providers/Microsoft.Compute/locations/eastus/operations"
OP_ID = "d932424c-d7b5-4016-b9a7-93ef1fab16c7"
UPDATE_VM = "Microsoft.Compute/UpdateVM3Min;{},Microsoft.Compute/UpdateVM30Min;{}"


def test_ids_guids_times_and_etags_compare_by_shape() -> None:
    recorded = {
        "id": f"{SUB}/resourceGroups/rg/providers/Microsoft.Network/x",
        "etag": 'W/"2967af5c-07a5-4c36-bf79-ba2111ce10b0"',
        "properties": {
            "resourceGuid": "8bb438c2-62fe-408f-8170-f30e82c59652",
            "startTime": "2020-09-08T08:47:07.8211305+00:00",
        },
    }
    actual = {
        "id": f"{OTHER}/resourceGroups/rg/providers/Microsoft.Network/x",
        "etag": 'W/"d11e26af-bbd6-47a9-90dd-4ec987360df9"',
        "properties": {
            "resourceGuid": "0e0e0e0e-62fe-408f-8170-f30e82c59652",
            "startTime": "2026-01-01T00:00:00Z",
        },
    }
    assert compare_json(recorded, actual) == []


def test_other_values_keys_types_and_lengths_are_compared() -> None:
    recorded = {"properties": {"provisioningState": "Updating", "priority": 400, "ports": ["80"]}}
    actual = {
        "properties": {"provisioningState": "Succeeded", "priority": "400", "extra": 1, "ports": []}
    }
    got = {d.where: d.detail for d in compare_json(recorded, actual)}
    assert got == {
        "body.properties.provisioningState": "recorded 'Updating', got 'Succeeded'",
        "body.properties.priority": "recorded number 400, got string '400'",
        "body.properties.extra": "not in the recording (got 1)",
        "body.properties.ports[*]": "recorded 1 items, got 0",
    }


def test_named_lists_are_matched_by_name_not_position() -> None:
    recorded = {"value": [{"name": "a", "x": 1}, {"name": "b", "x": 2}]}
    assert compare_json(recorded, {"value": [{"name": "b", "x": 2}, {"name": "a", "x": 1}]}) == []
    (diff,) = compare_json(recorded, {"value": [{"name": "a", "x": 1}]})
    assert diff == Difference("body.value[*]", "items missing: ['b']")


def test_headers_compare_url_shape_counts_and_presence() -> None:
    recorded = {
        "Azure-AsyncOperation": f"{OPS}/{OP_ID}?api-version=2020-06-01",
        "Location": f"{OPS}/{OP_ID}?monitor=true&api-version=2020-06-01",
        "x-ms-ratelimit-remaining-resource": UPDATE_VM.format(239, 1193),
        "x-ms-ratelimit-remaining-subscription-deletes": "14997",
        "server": "ignored",
    }
    same = {
        "azure-asyncoperation": recorded["Azure-AsyncOperation"].replace(
            "management.azure.com", "127.0.0.1:4443"
        ),
        "location": recorded["Location"].replace("d932424c", "00000000"),
        "x-ms-ratelimit-remaining-resource": UPDATE_VM.format(11, 1499),
        "x-ms-ratelimit-remaining-subscription-deletes": "199",
    }
    assert compare_headers(recorded, same) == []
    other = dict(
        same,
        location=same["location"]
        .replace("/operations/", "/operationResults/")
        .replace("monitor=true&", ""),
    )
    other["retry-after"] = "0"
    del other["x-ms-ratelimit-remaining-resource"]
    got = {d.where for d in compare_headers(recorded, other)}
    assert got == {
        "header:location",
        "header:retry-after",
        "header:x-ms-ratelimit-remaining-resource",
    }


def test_url_shape_keeps_path_and_query_keys_only() -> None:
    url = f"https://h.example{SUB}/providers/N/locations/westus/operations/ae879d24-4905-46cc-9c40-95a8034f34fa?api-version=2019-12-01&monitor=true"
    assert url_shape(url) == (
        "<host>/subscriptions/<guid>/providers/N/locations/westus/operations/<guid>"
        "?api-version&monitor=true"
    )


def test_status_is_compared() -> None:
    (diff,) = compare(202, {}, None, 405, {}, None)
    assert str(diff) == "status: recorded 202, got 405"


def test_reconcile_flags_unlisted_differences_and_stale_entries() -> None:
    found = [
        ("nsg/rule-get", Difference("header:etag", "missing")),
        ("nsg/rule-get", Difference("header:etag", "missing")),  # repeated: reported once
        ("vnet/get", Difference("body.properties.subnets[*].type", "missing")),
    ]
    table = [
        Deviation("nsg/*-get", "header:etag", "no ETag header"),
        Deviation("compute/*", "header:location", "gone since"),
    ]
    result = reconcile(found, table)
    assert not result.ok
    assert result.unexpected == [found[2]]
    assert result.stale == [table[1]]
    report = result.report()
    assert "vnet/get: body.properties.subnets[*].type: missing" in report
    assert "compute/* / header:location: gone since" in report
    listed = Deviation("vnet/*", "body.properties.subnets[*].type", "as sent")
    assert reconcile(found, [table[0], listed]).ok
    wider = Deviation("vnet/*|pip/*", "body.properties.subnets[*].type|body.x", "as sent")
    partly = reconcile(found, [table[0], wider])
    assert not partly.ok
    assert partly.stale_parts == [(wider, ["exchange pip/*", "where body.x"])]
    assert "narrow the entries" in partly.report()
