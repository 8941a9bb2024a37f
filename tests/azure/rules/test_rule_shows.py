"""A rule write counts only when a read shows it."""

from __future__ import annotations

from wac_azure._azure.rules import rule_shows

BODY = {
    "properties": {
        "protocol": "Tcp",
        "access": "Allow",
        "direction": "Inbound",
        "priority": 1000,
        "destinationPortRange": "6516",
        "sourceAddressPrefixes": ["10.10.0.0/16", "10.20.0.0/16"],
        "description": "Managed by wac_azure",
    }
}


def test_a_read_showing_the_write() -> None:
    read = {
        "name": "PortForWAC",
        "etag": 'W/"x"',
        "properties": {
            **BODY["properties"],
            "protocol": "TCP",
            "sourceAddressPrefixes": ["10.20.0.0/16", "10.10.0.0/16"],
            "provisioningState": "Succeeded",
        },
    }
    assert rule_shows(BODY, read)


def test_a_read_not_showing_the_write() -> None:
    assert not rule_shows(BODY, None)
    other = {"properties": {**BODY["properties"], "priority": 1001}}
    assert not rule_shows(BODY, other)
    fewer = {"properties": {**BODY["properties"], "sourceAddressPrefixes": ["10.10.0.0/16"]}}
    assert not rule_shows(BODY, fewer)
    assert not rule_shows(BODY, {"properties": "junk"})


def test_a_delete_is_shown_by_absence() -> None:
    assert rule_shows(None, None)
    assert not rule_shows(None, {"properties": BODY["properties"]})
