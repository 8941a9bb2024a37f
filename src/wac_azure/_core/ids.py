"""VM targets: parsing and validating ARM resource IDs and Azure portal URLs."""

from __future__ import annotations

import re
import urllib.parse

import attrs

from wac_azure._core.errors import InvalidResourceIdError

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Resource group names: 1-90 characters; letters (Unicode), digits, underscores,
# hyphens, periods and parentheses; must not end with a period.
_RG_MAX = 90
# VM resource names: 1-64 characters; no spaces or \/"[]:|<>+=;,?*@&~!#$%^'`{}
# must not start with an underscore nor end with a period or hyphen.
_VM_MAX = 64
_VM_FORBIDDEN = set(" \\/\"[]:|<>+=;,?*@&~!#$%^'`{}")
_PORTAL_HOSTS = {
    "portal.azure.com",
    "ms.portal.azure.com",
    "preview.portal.azure.com",
    "portal.azure.us",
    "portal.azure.cn",
}


def _fail(message: str, value: str, part: str) -> InvalidResourceIdError:
    return InvalidResourceIdError(message, value=value, part=part)


def _check_subscription(value: str, text: str) -> str:
    if not _GUID.match(value):
        raise _fail(
            f"subscription {value!r} is not a GUID (expected "
            "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx); copy it from the VM's resource ID",
            text,
            "subscription",
        )
    return value.lower()


def _check_resource_group(value: str, text: str) -> str:
    if not value:
        raise _fail("resource group name is empty", text, "resourceGroups")
    if len(value) > _RG_MAX:
        raise _fail(
            f"resource group name is {len(value)} characters long; Azure allows at most {_RG_MAX}",
            text,
            "resourceGroups",
        )
    for ch in value:
        if not (ch.isalnum() or ch in "_-.()"):
            raise _fail(
                f"resource group name {value!r} contains {ch!r}; only letters, digits, "
                "'_', '-', '.', '(' and ')' are allowed",
                text,
                "resourceGroups",
            )
    if value.endswith("."):
        raise _fail(
            f"resource group name {value!r} ends with a period, which Azure forbids",
            text,
            "resourceGroups",
        )
    return value


def _check_vm_name(value: str, text: str) -> str:
    if not value:
        raise _fail("virtual machine name is empty", text, "name")
    if len(value) > _VM_MAX:
        raise _fail(
            f"virtual machine name is {len(value)} characters long; Azure allows at most {_VM_MAX}",
            text,
            "name",
        )
    bad = sorted({ch for ch in value if ch in _VM_FORBIDDEN or not ch.isprintable()})
    if bad:
        raise _fail(
            f"virtual machine name {value!r} contains forbidden characters {''.join(bad)!r}",
            text,
            "name",
        )
    if value.startswith("_") or value.endswith((".", "-")):
        raise _fail(
            f"virtual machine name {value!r} may not start with '_' or end with '.' or '-'",
            text,
            "name",
        )
    return value


@attrs.frozen(order=True)
class VmTarget:
    """One Azure virtual machine, identified by subscription, resource group and name.

    Frozen and hashable. Compare and hash case-insensitively on the resource
    group and name is *not* done: ARM names keep their case, and the IDs
    Azure returns keep it too. ``str(target)`` is the canonical resource ID.
    """

    subscription_id: str
    resource_group: str
    name: str

    @classmethod
    def from_parts(cls, subscription_id: str, resource_group: str, name: str) -> VmTarget:
        """Build a target from its three parts, validating each."""
        text = f"{subscription_id}/{resource_group}/{name}"
        for part, value in (
            ("subscription", subscription_id),
            ("resourceGroups", resource_group),
            ("name", name),
        ):
            if not isinstance(value, str):
                raise _fail(
                    f"{part} must be a string, not {type(value).__name__}", repr(value), part
                )
        return cls(
            _check_subscription(subscription_id.strip(), text),
            _check_resource_group(resource_group.strip(), text),
            _check_vm_name(name.strip(), text),
        )

    @classmethod
    def parse(cls, text: str) -> VmTarget:
        """Parse an ARM resource ID or an Azure portal URL of a virtual machine.

        Accepted forms::

            /subscriptions/<guid>/resourceGroups/<rg>/providers/Microsoft.Compute/virtualMachines/<vm>
            https://portal.azure.com/#@tenant/resource/subscriptions/.../virtualMachines/<vm>/overview

        Segment names (``subscriptions``, ``resourceGroups``, ``providers``,
        ``Microsoft.Compute``, ``virtualMachines``) are matched
        case-insensitively as ARM does; the names keep their case.
        Raises :class:`~wac_azure.InvalidResourceIdError` naming the wrong part.
        """
        if isinstance(text, VmTarget):
            return text
        if not isinstance(text, str):
            raise _fail(
                f"expected a resource ID or portal URL string, got {type(text).__name__}",
                repr(text),
                "id",
            )
        raw = text.strip()
        if not raw:
            raise _fail("empty VM resource ID", text, "id")
        path = _portal_path(raw) if "://" in raw else raw
        return cls._parse_path(path, text)

    @classmethod
    def _parse_path(cls, path: str, text: str) -> VmTarget:
        if not path.startswith("/"):
            raise _fail(
                f"{text!r} is neither a resource ID (starting with /subscriptions/) "
                "nor an Azure portal URL",
                text,
                "id",
            )
        segs = path.strip("/").split("/")
        expected = ["subscriptions", None, "resourcegroups", None, "providers"]
        for i, want in enumerate(expected):
            if i >= len(segs):
                raise _fail(
                    f"resource ID {text!r} is incomplete: expected "
                    "/subscriptions/<id>/resourceGroups/<name>/providers/"
                    "Microsoft.Compute/virtualMachines/<name>",
                    text,
                    ["subscription", "subscription", "resourceGroups", "resourceGroups"][i]
                    if i < 4
                    else "provider",
                )
            if want is not None and segs[i].lower() != want:
                raise _fail(
                    f"segment {i + 1} of {text!r} is {segs[i]!r}; expected {want!r}",
                    text,
                    {0: "subscription", 2: "resourceGroups", 4: "provider"}[i],
                )
        sub = _check_subscription(segs[1], text)
        rg = _check_resource_group(urllib.parse.unquote(segs[3]), text)
        rest = segs[5:]
        if len(rest) < 3 or rest[0].lower() != "microsoft.compute":
            raise _fail(
                f"{text!r} is not a Microsoft.Compute resource; a VM ID continues "
                "with /providers/Microsoft.Compute/virtualMachines/<name>",
                text,
                "provider",
            )
        if rest[1].lower() != "virtualmachines":
            raise _fail(
                f"{text!r} names a {rest[0]}/{rest[1]} resource, not a virtual machine "
                "(Microsoft.Compute/virtualMachines)",
                text,
                "type",
            )
        name = _check_vm_name(urllib.parse.unquote(rest[2]), text)
        if len(rest) > 3:
            raise _fail(
                f"{text!r} has a trailing path {'/'.join(rest[3:])!r} after the VM name; "
                "give the VM's own resource ID",
                text,
                "trailing",
            )
        return cls(sub, rg, name)

    @property
    def resource_id(self) -> str:
        """The canonical ARM resource ID."""
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.Compute/virtualMachines/{self.name}"
        )

    def __str__(self) -> str:
        return self.resource_id


def _portal_path(url: str) -> str:
    """Extract the resource ID from an Azure portal URL."""
    try:
        parsed = urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise _fail(f"{url!r} is not a valid URL: {exc}", url, "url") from None
    host = (parsed.hostname or "").lower()
    if parsed.scheme != "https" or host not in _PORTAL_HOSTS:
        raise _fail(
            f"{url!r} is not an Azure portal URL (expected https://portal.azure.com/#@.../resource/...)",
            url,
            "url",
        )
    fragment = urllib.parse.unquote(parsed.fragment)
    marker = re.search(r"/resource(/subscriptions/.*)$", fragment, re.IGNORECASE)
    if marker is None:
        raise _fail(
            f"portal URL {url!r} does not point at a resource "
            "(its fragment should contain /resource/subscriptions/...)",
            url,
            "url",
        )
    path = marker.group(1).split("?")[0]
    segs = path.strip("/").split("/")
    # Drop a trailing blade name such as /overview or /networking.
    if len(segs) == 9 and segs[6].lower() == "virtualmachines":
        segs = segs[:8]
    return "/" + "/".join(segs)
