"""A reader for vcrpy YAML cassettes (the shared recordings and those ``--record`` writes)."""

from __future__ import annotations

import ast
import json
import os
import urllib.parse
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import yaml

#: Real ARM traffic recorded by the Azure CLI and Azure SDK test suites (see SOURCES.md
#: there); WAC_AZURE_RECORDINGS points elsewhere (a folder of your own ``--record`` runs).
RECORDINGS = Path(os.environ.get("WAC_AZURE_RECORDINGS") or Path(__file__).parent / "recordings")

CLI_RUN_COMMAND = "azure-cli.vm.test_vm_run_command_e2e.yaml"
SDK_VM_EXTENSIONS = "azure-sdk-for-python.compute.test_mgmt_compute.test_vm_extensions.yaml"
SDK_NSGS = "azure-sdk-for-python.network.test_mgmt_network.test_network_security_groups.yaml"
SDK_PUBLIC_IPS = "azure-sdk-for-python.network.test_mgmt_network.test_public_ip_addresses.yaml"
SDK_VNETS = "azure-sdk-for-python.network.test_mgmt_network.test_virtual_networks.yaml"
ALL = (CLI_RUN_COMMAND, SDK_VM_EXTENSIONS, SDK_NSGS, SDK_PUBLIC_IPS, SDK_VNETS)


def _unwrap_bytes_repr(text: str) -> str:
    """Undo the recorders' ``b'...'`` wrapping (some request bodies are wrapped twice)."""
    while len(text) > 3 and text.startswith(("b'", 'b"')) and text.endswith(text[1]):
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            break
        text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    return text


def _first(headers: Mapping[str, Any]) -> dict[str, str]:
    """vcrpy keeps every header as a list of values: lower-cased name -> first value."""
    out: dict[str, str] = {}
    for name, values in (headers or {}).items():
        if isinstance(values, list):
            out[str(name).lower()] = str(values[0]) if values else ""
        else:
            out[str(name).lower()] = str(values)
    return out


@attrs.frozen
class Interaction:
    """One recorded request and its response; header names are lower-cased."""

    cassette: str
    index: int
    method: str
    uri: str
    request_headers: dict[str, str]
    request_body: str | None
    status: int
    headers: dict[str, str]
    body: str

    @property
    def path(self) -> str:
        return urllib.parse.unquote(urllib.parse.urlsplit(self.uri).path)

    @property
    def query(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.uri).query))

    @property
    def is_arm(self) -> bool:
        return urllib.parse.urlsplit(self.uri).path.startswith("/subscriptions/")

    def json(self) -> Any:
        """The response body as JSON (``None`` when empty)."""
        return json.loads(self.body) if self.body.strip() else None

    def request_json(self) -> Any:
        """The request body as JSON (``None`` when empty)."""
        if not self.request_body or not self.request_body.strip():
            return None
        return json.loads(self.request_body)

    def __str__(self) -> str:
        return f"{self.cassette}[{self.index}] {self.method} {self.path} -> {self.status}"


def _body_text(body: Any) -> str | None:
    if body is None:
        return None
    if isinstance(body, Mapping):  # a response: {"string": ...}
        body = body.get("string")
    if isinstance(body, bytes):
        return body.decode("utf-8", "replace")
    return None if body is None else _unwrap_bytes_repr(str(body))


def parse_cassette(text: str, name: str = "<cassette>") -> list[Interaction]:
    """Every interaction of a vcrpy YAML cassette (``version: 1``)."""
    data = yaml.safe_load(text)
    if not isinstance(data, Mapping) or data.get("version") != 1:
        raise ValueError(f"{name}: not a vcrpy cassette (version 1)")
    out = []
    for i, item in enumerate(data.get("interactions") or []):
        req, resp = item["request"], item["response"]
        out.append(
            Interaction(
                cassette=name,
                index=i,
                method=str(req["method"]).upper(),
                uri=str(req["uri"]),
                request_headers=_first(req.get("headers") or {}),
                request_body=_body_text(req.get("body")),
                status=int(resp["status"]["code"]),
                headers=_first(resp.get("headers") or {}),
                body=_body_text(resp.get("body")) or "",
            )
        )
    return out


def load(name: str | Path) -> list[Interaction]:
    """The interactions of one cassette (a name in :data:`RECORDINGS` or a path)."""
    path = Path(name)
    if not path.is_absolute() and not path.exists():
        path = RECORDINGS / path
    return parse_cassette(path.read_text(encoding="utf-8"), path.name)


def arm_interactions(names: tuple[str, ...] = ALL) -> Iterator[Interaction]:
    """Every ARM interaction (``/subscriptions/...``) of the given cassettes."""
    for name in names:
        yield from (i for i in load(name) if i.is_arm)


def find(
    interactions: list[Interaction], method: str, path_suffix: str, *, status: int | None = None
) -> list[Interaction]:
    """Interactions whose method matches and whose path ends with ``path_suffix``."""
    suffix = path_suffix.lower()
    return [
        i
        for i in interactions
        if i.method == method.upper()
        and i.path.lower().endswith(suffix)
        and (status is None or i.status == status)
    ]
