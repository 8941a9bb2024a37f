"""The emulator's resource store: ARM JSON documents keyed by case-insensitive IDs."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

__all__ = ["ArmError", "Store", "clone", "new_etag", "not_found", "parse_id", "split_type"]

Doc = dict[str, Any]


class ArmError(Exception):
    """An ARM error answer: ``{"error": {"code": ..., "message": ...}}`` with a status."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        #: ``None``: no ``details`` key; a list (even empty, as Network sends) is answered.
        self.details = None if details is None else list(details)

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            err["details"] = self.details
        return {"error": err}


def new_etag() -> str:
    """A network-style weak etag."""
    return f'W/"{uuid.uuid4()}"'


def parse_id(resource_id: str) -> dict[str, str]:
    """Split an ARM ID into ``subscription``, ``resource_group``, ``provider``, ``type``, ``name``.

    ``type`` is the full resource type (``Microsoft.Network/networkSecurityGroups/securityRules``).
    """
    parts = [p for p in resource_id.strip().split("/") if p]
    out: dict[str, str] = {}
    i = 0
    while i + 1 < len(parts):
        key = parts[i].lower()
        if key == "subscriptions":
            out["subscription"] = parts[i + 1]
        elif key == "resourcegroups":
            out["resource_group"] = parts[i + 1]
        elif key == "providers":
            out["provider"] = parts[i + 1]
            rest = parts[i + 2 :]
            types = [out["provider"]] + [rest[j] for j in range(0, len(rest), 2)]
            names = [rest[j] for j in range(1, len(rest), 2)]
            out["type"] = "/".join(types)
            if names:
                out["name"] = names[-1]
            break
        i += 2
    return out


def not_found(resource_id: str) -> ArmError:
    """ARM's 404 for a missing resource."""
    info = parse_id(resource_id)
    rtype = info.get("type", "")
    names = _type_and_names(resource_id)
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{names or rtype}' under resource group "
        f"'{info.get('resource_group', '')}' was not found. For more details please go to "
        "https://aka.ms/ARMResourceNotFoundFix",
    )


def _type_and_names(resource_id: str) -> str:
    parts = [p for p in resource_id.split("/") if p]
    low = [p.lower() for p in parts]
    if "providers" not in low:
        return ""
    i = len(low) - 1 - low[::-1].index("providers")
    return "/".join(parts[i + 1 :])


def split_type(resource_type: str) -> tuple[str, str]:
    """``"Microsoft.Network/nsgs"`` → ``("Microsoft.Network", "nsgs")``."""
    ns, _, rest = resource_type.partition("/")
    return ns, rest


def _key(resource_id: str) -> str:
    return "/" + "/".join(p for p in resource_id.lower().split("/") if p)


class Store:
    """Top-level ARM resources by lower-cased ID, in insertion order.

    Child resources that ARM embeds in their parent (security rules in an NSG,
    subnets in a VNet) live inside the parent's document; extensions and managed
    run commands are stored as resources of their own.
    """

    def __init__(self) -> None:
        self._docs: dict[str, Doc] = {}
        self._types: dict[str, dict[str, Doc]] = {}
        self._children: dict[str, dict[str, Doc]] = {}
        self._meta: dict[str, tuple[str, str | None]] = {}
        self.resource_groups: dict[tuple[str, str], Doc] = {}

    def clear(self) -> None:
        self._docs.clear()
        self._types.clear()
        self._children.clear()
        self._meta.clear()
        self.resource_groups.clear()

    def get(self, resource_id: str) -> Doc | None:
        return self._docs.get(_key(resource_id))

    def put(self, doc: Doc) -> Doc:
        key = _key(doc["id"])
        self._unindex(key)
        rtype = str(doc.get("type") or parse_id(key).get("type", "")).lower()
        parent = key.rsplit("/", 2)[0] if rtype.count("/") >= 2 else None
        self._docs[key] = doc
        self._types.setdefault(rtype, {})[key] = doc
        if parent is not None:
            self._children.setdefault(parent, {})[key] = doc
        self._meta[key] = (rtype, parent)
        return doc

    def _unindex(self, key: str) -> None:
        meta = self._meta.pop(key, None)
        if meta is None:
            return
        rtype, parent = meta
        self._types.get(rtype, {}).pop(key, None)
        if parent is not None:
            self._children.get(parent, {}).pop(key, None)

    def delete(self, resource_id: str) -> Doc | None:
        key = _key(resource_id)
        self._unindex(key)
        return self._docs.pop(key, None)

    def __contains__(self, resource_id: object) -> bool:
        return isinstance(resource_id, str) and _key(resource_id) in self._docs

    def __iter__(self) -> Iterator[Doc]:
        return iter(list(self._docs.values()))

    def scoped(self, subscription: str, resource_group: str | None = None) -> list[Doc]:
        """Top-level resources (``Namespace/type``) in a subscription or resource group."""
        prefix = f"/subscriptions/{subscription.lower()}/"
        if resource_group is not None:
            prefix += f"resourcegroups/{resource_group.lower()}/"
        return [
            self._docs[k]
            for k, (rtype, _) in self._meta.items()
            if rtype.count("/") == 1 and k.startswith(prefix)
        ]

    def of_type(
        self,
        resource_type: str,
        *,
        subscription: str | None = None,
        resource_group: str | None = None,
        parent: str | None = None,
    ) -> list[Doc]:
        """Documents of one type, filtered by scope (all case-insensitive), in insertion order."""
        rtype = resource_type.lower()
        if parent is not None:
            pool = self._children.get(_key(parent), {})
            return [d for k, d in pool.items() if self._meta[k][0] == rtype]
        pool = self._types.get(rtype, {})
        if subscription is None:
            return list(pool.values())
        prefix = f"/subscriptions/{subscription.lower()}/"
        if resource_group is not None:
            prefix += f"resourcegroups/{resource_group.lower()}/"
        return [d for k, d in pool.items() if k.startswith(prefix)]

    def ensure_resource_group(self, subscription: str, name: str, location: str) -> Doc:
        key = (subscription.lower(), name.lower())
        rg = self.resource_groups.get(key)
        if rg is None:
            rg = {
                "id": f"/subscriptions/{subscription}/resourceGroups/{name}",
                "name": name,
                "type": "Microsoft.Resources/resourceGroups",
                "location": location,
                "properties": {"provisioningState": "Succeeded"},
            }
            self.resource_groups[key] = rg
        return rg

    def resource_group(self, subscription: str, name: str) -> Doc | None:
        return self.resource_groups.get((subscription.lower(), name.lower()))

    def require_rg(self, subscription: str, name: str) -> Doc:
        """The resource group, or ARM's 404 ``ResourceGroupNotFound``."""
        found = self.resource_group(subscription, name)
        if found is None:
            raise ArmError(
                404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found."
            )
        return found

    def require(self, resource_id: str) -> Doc:
        """The resource (its resource group first), or ARM's 404 for whichever is missing."""
        info = parse_id(resource_id)
        self.require_rg(info.get("subscription", ""), info.get("resource_group", ""))
        doc = self.get(resource_id)
        if doc is None:
            raise not_found(resource_id)
        return doc


def clone(doc: Any) -> Any:
    """A deep copy (answers never share structure with the store)."""
    return copy.deepcopy(doc)
