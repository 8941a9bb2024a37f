"""NetworkRulePlanner: read facts, plan NSG rules, write them one rule at a time."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import attrs
from azure.core.exceptions import HttpResponseError

from wac_azure._azure.cache import CacheSlot
from wac_azure._azure.deadline import within
from wac_azure._azure.errors import REQUEST_ERRORS, lro_failure, translate
from wac_azure._azure.inventory import get_json, put_json
from wac_azure._azure.operations import read_operation, wait_for_operation
from wac_azure._azure.reader import read_vm_facts
from wac_azure._azure.retry import retrying
from wac_azure._azure.session import AzureSession
from wac_azure._azure.tags import read_service_tags, service_tags_for
from wac_azure._core.access import AccessMode
from wac_azure._core.decide import PlanBlockedError
from wac_azure._core.errors import (
    AzureRequestError,
    ConfigurationError,
    NetworkVerificationError,
    OperationFailedError,
    StalePlanError,
    WacAzureError,
)
from wac_azure._core.facts import ADDRESS_TAG, DEFAULT_PORT, NicFacts, VmFacts, split_resource_id
from wac_azure._core.facts import as_json as _as_json
from wac_azure._core.ids import VmTarget
from wac_azure._core.nsg import NetworkSecurityGroup, ServiceTags
from wac_azure._core.plan import (
    ApplyResult,
    ChangeAction,
    NetworkPlan,
    RuleChange,
    address_record,
    fingerprint,
    nsgs_after,
    plan_many,
    removal_plan,
    unmet_intent,
)
from wac_azure._core.validate import check_port, check_ports, refuse_well_known_port

_log = logging.getLogger(__name__)
T = TypeVar("T")

#: The lock that serializes writes to one NSG within a session.
NSG_LOCKS: CacheSlot[asyncio.Lock] = CacheSlot("nsg write lock")
_WRITE = "Microsoft.Network/networkSecurityGroups/securityRules/write"
_DELETE = "Microsoft.Network/networkSecurityGroups/securityRules/delete"
#: ARM codes that mean another writer took a rule's priority or name in between.
_CONFLICT_CODES = frozenset(
    {"SecurityRuleConflict", "SecurityRulePriorityConflict", "PreconditionFailed"}
)
#: How many times one apply re-reads and re-plans after another writer got in between.
_MAX_REPLANS = 3


def _norm(value: Any) -> Any:
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, list):
        return sorted(json.dumps(_norm(v), sort_keys=True) for v in value)
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return value


def rule_shows(body: Any, doc: Any) -> bool:
    """Whether a security rule as read (``doc``; ``None``: absent) shows a write of
    ``body`` (``None``: a delete): every property written reads back the same
    (strings case-insensitively, lists in any order)."""
    if body is None:
        return doc is None
    if not isinstance(doc, dict):
        return False
    wrote = body.get("properties") if isinstance(body, dict) else None
    read = doc.get("properties")
    if not isinstance(wrote, dict) or not isinstance(read, dict):
        return False
    return all(_norm(read.get(k)) == _norm(v) for k, v in wrote.items())


def not_in_force(what: str, rule_id: str) -> OperationFailedError:
    """The write's operation succeeded, yet a read does not show it: another write
    superseded it. ``WriteNotInForce`` is transient: ``retrying`` sends it again."""
    return OperationFailedError(
        f"{what}: the operation succeeded but a read of {rule_id} does not show the write "
        "(another write to the NSG superseded it); writing it again",
        code="WriteNotInForce",
        target=rule_id,
    )


async def confirm_rule(session: AzureSession, rule_id: str, body: Any, *, what: str) -> None:
    """GET the rule (one read) and raise :func:`not_in_force` unless it shows the write."""
    sub = rule_id.split("/")[2]
    doc = await get_json(session, "network", sub, rule_id, {})
    if not rule_shows(body, doc):
        raise not_in_force(what, rule_id)


#: ``provisioningState`` values that end an operation (ARM RPC, Addendum: "ProvisioningState
#: property": ``Succeeded``, ``Failed``, ``Canceled``).
_TERMINAL = frozenset({"succeeded", "failed", "canceled", "cancelled"})


def _retry_after(headers: Any, fallback: float | None) -> float:
    try:
        delay = float(headers.get("Retry-After") or 0)
    except (TypeError, ValueError):
        delay = 0.0
    return delay if delay > 0 else (1.0 if fallback is None else fallback)


async def settle_rule_write(
    session: AzureSession, headers: Any, rule_id: str, body: Any, *, what: str
) -> None:
    """Wait until a rule PUT of ``body`` (``None``: a DELETE) is in force, by reading the
    rule itself: usually one read where an operation poll and a GET of the rule took two.

    ``headers`` are ARM's answer to the write. ARM's RPC (Addendum, "Creating/Updating
    using PUT", steps 4 to 6; "Delete Resource Asynchronously", steps 4 and 5) has GETs
    of a resource show a non-terminal ``provisioningState`` while its operation runs and
    a terminal one after it; a deleted resource disappears. Recorded Network traffic
    agrees (the rule PUT answers 201 ``Updating``; the GET after the operation's
    ``Succeeded`` shows ``Succeeded``: test_network_security_groups, and the CLI's
    ``vm open-port`` in test_vm_run_command_e2e). So a GET of the rule that shows
    ``Succeeded`` and the write (:func:`rule_shows`), or a 404 after a delete, is both
    the operation's success and the read-back a write needs to count (a superseding
    write can roll a rule back: ``OperationPreempted``). While the rule shows a
    non-terminal state it is read again, at the operation's ``Retry-After`` or the
    session's polling interval.

    Anything else that is terminal (the rule gone, ``Failed``, or ``Succeeded`` with
    other properties) costs one read of the operation, for its verdict: ``Failed`` or
    ``Canceled`` raises azure-core's ``HttpResponseError`` with the operation's error
    (as :func:`~wac_azure._azure.operations.wait_for_operation`), ``Succeeded`` raises
    :func:`not_in_force`; an operation still running is waited for and the rule read
    once more, as before this shortcut.
    """
    sub = rule_id.split("/")[2]
    url = headers.get("Azure-AsyncOperation") or headers.get("Location")
    if not url:  # ARM answered synchronously: the write is done, read it back
        await confirm_rule(session, rule_id, body, what=what)
        return
    delay = _retry_after(headers, session.polling_interval)
    while True:
        await session.sleep(delay)
        doc = await get_json(session, "network", sub, rule_id, {})
        props = (doc or {}).get("properties")
        state = str((props or {}).get("provisioningState") or "").lower()
        if body is None and doc is None:
            return  # deleted
        if body is not None and state == "succeeded" and rule_shows(body, doc):
            return  # in force
        if doc is not None and state not in _TERMINAL:
            continue  # the operation is still running
        break
    client: Any = session.network(sub)
    status, resp = await read_operation(client, url)
    if status == "succeeded":
        raise not_in_force(what, rule_id)
    if status in _TERMINAL:
        raise HttpResponseError(response=resp)
    # still running, yet the rule shows an end: another write got in; wait for ours
    await wait_for_operation(client, resp.headers, session)
    await confirm_rule(session, rule_id, body, what=what)


def _parts(resource_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, name) of an NSG or NIC id."""
    parts = split_resource_id(resource_id)
    if parts is None:
        raise ConfigurationError(f"{resource_id!r} is not an ARM resource id")
    return parts[0], parts[1], parts[2][0][1]


#: Tries of the address record's NIC write when the NIC changed since it was read (412).
_RECORD_ATTEMPTS = 3


class NetworkRulePlanner:
    """Plans and applies the NSG rules Windows Admin Center needs.

    ::

        planner = NetworkRulePlanner(session)
        plan = await planner.plan(target, access=PublicAccess(["203.0.113.7"]))
        print(plan)                      # a readable diff
        result = await planner.apply(plan)

    Writes are surgical: one ``securityRules`` PUT or DELETE per rule, never
    a whole-NSG PUT; writes to one NSG are serialized within the session;
    ``RetryableErrorDueToAnotherOperation`` is retried. Rules it creates carry
    the description ``Managed by wac_azure``; :meth:`remove` deletes only those.
    """

    def __init__(self, session: AzureSession) -> None:
        self._session = session
        #: each rule's etag as last read (rule id, lower case): sent as ``If-Match``
        self._rule_etags: dict[str, str] = {}

    # -- reading ----------------------------------------------------------------------

    async def _facts(self, target: VmTarget | str) -> VmFacts:

        return await read_vm_facts(self._session, target)

    async def service_tags(self, subscription_id: str, location: str) -> ServiceTags | None:
        """The service tags of ``location`` (read once per session), or ``None`` if unavailable."""
        return await read_service_tags(self._session, subscription_id, location)

    async def _tags_for(self, facts: Sequence[VmFacts]) -> tuple[ServiceTags, list[str]]:
        return await service_tags_for(self._session, facts)

    # -- planning ---------------------------------------------------------------------

    async def plan(
        self,
        target: VmTarget | str,
        *,
        access: AccessMode | None = None,
        port: int = DEFAULT_PORT,
        entra: bool = True,
        facts: VmFacts | None = None,
        create_nsg: bool = False,
        timeout: float | None = None,
        allow_well_known_port: bool = False,
    ) -> NetworkPlan:
        """Plan the NSG rules one VM needs (reads its facts unless ``facts`` is given).

        A well-known ``port`` (below 1024, or 3389, 5985, 5986) raises
        :class:`~wac_azure.ConfigurationError` unless ``allow_well_known_port=True``:
        applying the plan would open it.
        """
        return await self.plan_many(
            [target],
            access=access,
            port=port,
            entra=entra,
            facts=[facts] if facts is not None else None,
            create_nsg=create_nsg,
            timeout=timeout,
            allow_well_known_port=allow_well_known_port,
        )

    async def plan_many(
        self,
        targets: Iterable[VmTarget | str],
        *,
        access: AccessMode | None = None,
        port: int = DEFAULT_PORT,
        entra: bool = True,
        facts: Sequence[VmFacts] | None = None,
        create_nsg: bool = False,
        timeout: float | None = None,
        allow_well_known_port: bool = False,
    ) -> NetworkPlan:
        """One plan for many VMs: an NSG they share gets each needed rule once (a
        well-known ``port`` as for :meth:`plan`)."""
        check_port(port)  # before any read
        refuse_well_known_port(port, allow_well_known_port=allow_well_known_port)

        async def run() -> NetworkPlan:
            all_facts = list(facts) if facts is not None else await self._read_all(targets)
            return await self._plan_from(
                all_facts, access=access, port=port, entra=entra, create_nsg=create_nsg
            )

        return await within(run(), timeout, "planning the network rules")

    async def _read_all(self, targets: Iterable[VmTarget | str]) -> list[VmFacts]:
        return list(await asyncio.gather(*(self._facts(t) for t in targets)))

    async def _plan_from(
        self,
        facts: Sequence[VmFacts],
        *,
        access: AccessMode | None,
        port: int,
        entra: bool,
        create_nsg: bool,
    ) -> NetworkPlan:
        tags, warnings = await self._tags_for(facts)
        plan = plan_many(
            facts, access=access, port=port, entra=entra, create_nsg=create_nsg, service_tags=tags
        )
        if warnings:
            plan = attrs.evolve(plan, warnings=(*plan.warnings, *warnings))
        return plan

    # -- applying ---------------------------------------------------------------------

    def nsg_lock(self, nsg_id: str) -> asyncio.Lock:
        """The session-wide lock that serializes writes to one NSG (fleets share it)."""
        lock = self._session.cache.get(NSG_LOCKS, nsg_id.lower())
        if lock is None:
            lock = asyncio.Lock()
            self._session.cache.set(NSG_LOCKS, nsg_id.lower(), lock)
        return lock

    async def read_nsg(self, nsg_id: str) -> NetworkSecurityGroup | None:
        """GET one NSG (``None`` when it is gone); read it under :meth:`nsg_lock` before writing."""
        return await self._read_nsg(nsg_id)

    def nsg_as_read(self, nsg_id: str, doc: dict[str, Any]) -> NetworkSecurityGroup:
        """An NSG document read another way than :meth:`read_nsg` (a fleet's list of the
        resource group's NSGs, started under :meth:`nsg_lock`): its rules' etags are kept
        for the writes' ``If-Match``, as :meth:`read_nsg` keeps them."""
        self._remember_etags(nsg_id, doc)
        return NetworkSecurityGroup.from_arm(doc)

    @staticmethod
    def nsg_changed(now: NetworkSecurityGroup | None, planned: NetworkSecurityGroup | str) -> bool:
        """Whether ``now`` (a fresh read) differs from the NSG (or fingerprint) a plan used."""
        before = planned if isinstance(planned, str) else fingerprint(planned)
        return now is None or fingerprint(now) != before

    @staticmethod
    def replan_nsg(
        facts: Sequence[VmFacts],
        nsg: NetworkSecurityGroup,
        *,
        kind: str = "enable",
        access: AccessMode | None = None,
        port: int = DEFAULT_PORT,
        entra: bool = True,
        service_tags: ServiceTags | None = None,
    ) -> NetworkPlan:
        """Plan ``facts`` again with ``nsg`` as just read, keeping only the changes to ``nsg``.

        Pure: the caller read ``nsg`` (under :meth:`nsg_lock`). ``kind`` is
        ``"enable"`` or ``"remove"``. Blocking conflicts are kept as planned.
        """
        key = nsg.id.lower()
        fresh = [attrs.evolve(f, nsgs={**f.nsgs, key: nsg}) if key in f.nsgs else f for f in facts]
        if kind == "remove":
            plan = removal_plan(fresh)
        else:
            plan = plan_many(
                fresh, access=access, port=port, entra=entra, service_tags=service_tags
            )
        return attrs.evolve(plan, changes=tuple(c for c in plan.changes if c.nsg_id.lower() == key))

    async def _read_nsg(self, nsg_id: str) -> NetworkSecurityGroup | None:

        sub, rg, name = _parts(nsg_id)
        try:
            found = await self._session.network(sub).network_security_groups.get(rg, name)
        except REQUEST_ERRORS as exc:
            if getattr(exc, "status_code", None) == 404:
                return None
            raise translate(
                exc,
                what=f"reading the NSG {name}",
                action="Microsoft.Network/networkSecurityGroups/read",
            ) from exc
        doc = _as_json(found)
        self._remember_etags(nsg_id, doc)
        return NetworkSecurityGroup.from_arm(doc)

    def _remember_etags(self, nsg_id: str, doc: Any) -> None:
        """Keep each rule's etag as last read: the ``If-Match`` of its next update/delete."""
        prefix = f"{nsg_id.lower()}/securityrules/"
        for key in [k for k in self._rule_etags if k.startswith(prefix)]:
            del self._rule_etags[key]
        props = doc.get("properties") if isinstance(doc, dict) else None
        for rule in (props or {}).get("securityRules") or []:
            name, etag = rule.get("name"), rule.get("etag")
            if isinstance(name, str) and isinstance(etag, str):
                self._rule_etags[prefix + name.lower()] = etag

    async def _changed(self, plan: NetworkPlan, nsg_ids: Iterable[str]) -> bool:
        return bool(await self._changed_nsgs(plan, nsg_ids))

    async def _changed_nsgs(self, plan: NetworkPlan, nsg_ids: Iterable[str]) -> list[str]:
        """The NSGs of ``nsg_ids`` whose rules differ now from what ``plan`` was made on
        (one GET each; the rules' etags are remembered for the writes' ``If-Match``)."""
        ids = [i for i in nsg_ids if i.lower() in plan.nsg_fingerprints]
        current = await asyncio.gather(*(self._read_nsg(i) for i in ids))
        changed = []
        for nsg_id, nsg in zip(ids, current, strict=True):
            if self.nsg_changed(nsg, plan.nsg_fingerprints[nsg_id.lower()]):
                _log.info("NSG %s changed since the plan", nsg_id)
                changed.append(nsg_id)
        return changed

    async def _replan(self, plan: NetworkPlan) -> NetworkPlan:
        facts = await self._read_all(plan.targets)
        if plan.kind == "remove":
            return removal_plan(facts)
        return await self._plan_from(
            facts,
            access=plan.access,
            port=plan.port,
            entra=plan.entra,
            create_nsg=plan.create_nsg,
        )

    async def _replan_settled(self, plan: NetworkPlan, nsg_ids: list[str]) -> NetworkPlan:
        """Re-plan, then re-read the NSGs (remembering their rules' etags) until the NSGs
        are as the new plan saw them: the etags sent next belong to what was planned on."""
        for _ in range(_MAX_REPLANS):
            plan = await self._replan(plan)
            if not await self._changed(plan, nsg_ids):
                break
        return plan

    async def apply(
        self, plan: NetworkPlan, *, strict: bool = False, timeout: float | None = None
    ) -> ApplyResult:
        """Make the plan's changes: re-read each NSG first; if one changed since the plan,
        re-plan (``ApplyResult.replanned`` says so) or, with ``strict=True``, raise
        :class:`~wac_azure.StalePlanError` having written nothing.

        Changes that add reach are written before those that take it away
        (make-before-break); after any of the latter, the NSGs are read again and
        must show the intended flows, else :class:`~wac_azure.NetworkVerificationError`.
        Raises :class:`~wac_azure.PlanBlockedError` for a plan with blocking
        conflicts (also when the re-plan has some).
        """
        if not isinstance(plan, NetworkPlan):
            raise ConfigurationError(f"apply() needs a NetworkPlan, got {type(plan).__name__}")
        if not isinstance(strict, bool):
            raise ConfigurationError(f"strict must be True or False, got {strict!r}")
        _refuse_blocked(plan)
        return await within(self._apply(plan, strict=strict), timeout, "applying the network plan")

    async def _apply(self, plan: NetworkPlan, *, strict: bool = False) -> ApplyResult:
        for rule in plan.unowned:
            _log.warning("%s", rule)
        nsg_ids = sorted({c.nsg_id.lower(): c.nsg_id for c in plan.changes}.values(), key=str.lower)
        if strict:
            # every NSG the plan read, not only those it writes: a rule added anywhere on
            # the path can change what the plan should have been
            every = {k: k for k in plan.nsg_fingerprints} | {i.lower(): i for i in nsg_ids}
            nsg_ids = sorted(every.values(), key=str.lower)
        if not nsg_ids:
            return ApplyResult(plan=plan)
        async with contextlib.AsyncExitStack() as held:
            for nsg_id in nsg_ids:  # sorted: two applies never wait on each other in a cycle
                await held.enter_async_context(self.nsg_lock(nsg_id))
            return await self._apply_locked(plan, nsg_ids, strict=strict)

    async def _apply_locked(
        self, plan: NetworkPlan, nsg_ids: list[str], *, strict: bool = False
    ) -> ApplyResult:
        original = plan
        replanned = False
        changed = await self._changed_nsgs(plan, nsg_ids)
        if changed and strict:
            raise StalePlanError(
                f"{len(changed)} NSG(s) changed since the plan was made "
                f"({', '.join(_last(i) for i in changed)}); nothing was written. Plan again, "
                "or apply without strict=True to re-plan and apply",
                nsgs=tuple(changed),
            )
        if changed:
            plan = await self._replan(plan)
            replanned = True
            _refuse_blocked(plan)
        created: list[RuleChange] = []
        updated: list[RuleChange] = []
        deleted: list[RuleChange] = []
        pending = list(plan.changes)
        replans = 0
        while pending:
            change = pending.pop(0)
            try:
                await self._write(change)
            except AzureRequestError as exc:
                # another writer took the priority or name, or changed the rule, in between
                # (412 on our If-Match/If-None-Match): never overwrite; re-read and re-plan
                if replans >= _MAX_REPLANS or exc.code not in _CONFLICT_CODES:
                    raise
                _log.info("%s while writing %s; re-planning", exc.code, change.rule_name)
                plan = await self._replan_settled(plan, nsg_ids)
                replans += 1
                replanned = True
                _refuse_blocked(plan)
                pending = list(plan.changes)
                continue
            {ChangeAction.DELETE: deleted, ChangeAction.UPDATE: updated}.get(
                change.action, created
            ).append(change)
        if any(c.narrows for c in (*updated, *deleted)):
            await self._verify(plan)
        done = {_key(c) for c in (*created, *updated, *deleted)}
        skipped = tuple(
            (c, "no longer needed: the NSG changed since the plan and was re-planned")
            for c in original.changes
            if _key(c) not in done
        )
        return ApplyResult(
            plan=plan,
            created=tuple(created),
            updated=tuple(updated),
            deleted=tuple(deleted),
            skipped=skipped,
            replanned=replanned,
        )

    async def _verify(self, plan: NetworkPlan) -> None:
        """Read the VMs' NSGs again once a change that takes reach away is written, and
        check that they show what was intended: planning again finds nothing to write
        (every needed flow allowed, no rule of ours left serving the old sources, ports or
        addresses). Raises :class:`~wac_azure.NetworkVerificationError` otherwise."""
        fresh = await self._replan(plan)
        problems = unmet_intent(fresh)
        if problems:
            raise NetworkVerificationError(
                "the NSG rules were written, but a read afterwards does not show the intended "
                "flows (another writer may have changed them meanwhile); run again to "
                "converge:\n  " + "\n  ".join(problems),
                problems=problems,
            )

    async def _retry(self, call: Callable[[], Awaitable[T]], *, what: str, action: str) -> T:

        try:
            return await retrying(
                call, config=self._session.retry, sleep=self._session.sleep, what=what
            )
        except REQUEST_ERRORS as exc:
            raise translate(exc, what=what, action=action) from exc

    async def _write(self, change: RuleChange) -> None:
        sub, rg, nsg_name = _parts(change.nsg_id)
        client: Any = self._session.network(sub)
        if change.action is ChangeAction.CREATE_NSG:
            await self._create_nsg(change)
            return
        name = change.rule_name or ""
        if change.action in (ChangeAction.CREATE, ChangeAction.UPDATE):
            body = change.body

            verb = "creating" if change.action is ChangeAction.CREATE else "updating"
            rule_id = f"{change.nsg_id}/securityRules/{name}"

            headers = self._conditions(change, rule_id)

            async def put() -> None:
                answer: list[Any] = []  # ARM's answer to the PUT (azure-core's response hook)
                await client.security_rules.begin_create_or_update(
                    rg,
                    nsg_name,
                    name,
                    body,
                    headers=headers,
                    polling=False,
                    raw_response_hook=answer.append,
                )
                # In force once its operation succeeded and a read shows the write (a
                # superseding write can have replaced it): the rule's own GET says both.
                await _settled(
                    self._session, answer, rule_id, body, what=f"{verb} the security rule {name}"
                )

            _log.info("%s security rule %s in NSG %s", verb, name, nsg_name)
            await self._retry(
                put,
                what=f"{verb} the security rule {name} in NSG {nsg_name}",
                action=_WRITE,
            )
            self._rule_etags.pop(rule_id.lower(), None)  # the write made a new one
        else:
            conditions = self._conditions(change, f"{change.nsg_id}/securityRules/{name}")

            async def delete() -> None:
                answer: list[Any] = []
                await client.security_rules.begin_delete(
                    rg,
                    nsg_name,
                    name,
                    headers=conditions,
                    polling=False,
                    raw_response_hook=answer.append,
                )
                await _settled(
                    self._session,
                    answer,
                    f"{change.nsg_id}/securityRules/{name}",
                    None,
                    what=f"deleting the security rule {name}",
                )

            _log.info("deleting security rule %s from NSG %s", name, nsg_name)
            await self._retry(
                delete,
                what=f"deleting the security rule {name} from NSG {nsg_name}",
                action=_DELETE,
            )

    def write_conditions(self, change: RuleChange) -> dict[str, str]:
        """The conditional headers for ``change`` (a fleet's own rule writes send them too).

        The etag is the rule's as last read by :meth:`read_nsg`; it is forgotten
        here, as the write will make a new one.
        """
        rule_id = f"{change.nsg_id}/securityRules/{change.rule_name or ''}"
        headers = self._conditions(change, rule_id)
        self._rule_etags.pop(rule_id.lower(), None)
        return headers

    def _conditions(self, change: RuleChange, rule_id: str) -> dict[str, str]:
        """The conditional headers of one rule write: a create must not find the name
        taken (``If-None-Match: *``); an update or delete must find the rule as it was
        read (``If-Match: <its etag>``). Network answers 412 ``PreconditionFailed``
        otherwise, and the apply re-reads and re-plans instead of overwriting."""
        if change.action is ChangeAction.CREATE:
            return {"If-None-Match": "*"}
        etag = self._rule_etags.get(rule_id.lower())
        return {"If-Match": etag} if etag else {}

    async def _create_nsg(self, change: RuleChange) -> None:
        sub, rg, nsg_name = _parts(change.nsg_id)
        client: Any = self._session.network(sub)
        if await self._read_nsg(change.nsg_id) is None:

            async def put_nsg() -> Any:
                poller = await client.network_security_groups.begin_create_or_update(
                    rg, nsg_name, change.body
                )
                return await _finish(poller)

            _log.info("creating NSG %s", nsg_name)
            await self._retry(
                put_nsg,
                what=f"creating the NSG {nsg_name}",
                action="Microsoft.Network/networkSecurityGroups/write",
            )
        if not change.nic_id:
            return
        nsub, nrg, nic_name = _parts(change.nic_id)
        nclient: Any = self._session.network(nsub)

        async def attach() -> Any:
            nic = _as_json(await nclient.network_interfaces.get(nrg, nic_name))
            props = nic.setdefault("properties", {})
            current = (props.get("networkSecurityGroup") or {}).get("id")
            if current and current.lower() == change.nsg_id.lower():
                return nic
            props["networkSecurityGroup"] = {"id": change.nsg_id}
            poller = await nclient.network_interfaces.begin_create_or_update(nrg, nic_name, nic)
            return await _finish(poller)

        _log.info("attaching NSG %s to NIC %s", nsg_name, nic_name)
        await self._retry(
            attach,
            what=f"attaching the NSG {nsg_name} to NIC {nic_name}",
            action="Microsoft.Network/networkInterfaces/write",
        )

    # -- the address record -------------------------------------------------------------

    async def record_addresses(
        self,
        facts: VmFacts,
        nsgs: Iterable[NetworkSecurityGroup],
        *,
        nic_doc: dict[str, Any] | None = None,
        wait: bool = True,
        wrote: bool = True,
    ) -> tuple[str, ...] | None:
        """Keep the primary NIC's tag ``wac_azure-rule-addresses`` saying which of its
        addresses wac_azure's rules name, once ``nsgs`` (the VM's NSGs as written) are in
        force (:func:`~wac_azure._core.plan.address_record`). When the VM's address
        changes, the next ``enable`` or ``disable`` finds the old one there and takes it
        out of the rules. No write when the tag already says so; returns what was written.

        ``nic_doc`` is the NIC as just read (a fleet's listing): the first attempt
        PUTs it with ``If-Match`` on its etag instead of reading it again; with
        ``wait=False`` the PUT's operation is not polled (a fleet's bookkeeping write,
        which must not cost a poll per VM).
        Bookkeeping, not reachability: a failure is logged at WARNING and not raised.
        """
        wanted = address_record(facts, nsgs, wrote=wrote)
        nic = facts.primary_nic
        if wanted is None or nic is None:
            return None
        return await self.write_address_record(nic, wanted, nic_doc=nic_doc, wait=wait)

    async def write_address_record(
        self,
        nic: NicFacts,
        wanted: tuple[str, ...],
        *,
        nic_doc: dict[str, Any] | None = None,
        wait: bool = True,
    ) -> tuple[str, ...] | None:
        """Write ``wanted`` (:func:`~wac_azure._core.plan.address_record`'s answer) into
        the NIC's tag: :meth:`record_addresses` once it has decided what to write (a
        fleet decides when a VM's rules are in and writes later, holding only this)."""
        try:
            await self._write_record(nic, wanted, nic_doc, wait=wait)
        except WacAzureError as exc:
            _log.warning(
                "could not record the addresses of NIC %s in its tag %s (%s); a later change "
                "of its address will leave the old one in wac_azure's rules",
                nic.name,
                ADDRESS_TAG,
                exc,
            )
            return None
        return wanted

    async def _write_record(
        self,
        nic: NicFacts,
        wanted: tuple[str, ...],
        nic_doc: dict[str, Any] | None,
        *,
        wait: bool = True,
    ) -> None:
        sub, _rg, nic_name = _parts(nic.id)
        client: Any = self._session.network(sub)
        listed = [json.loads(json.dumps(nic_doc))] if nic_doc is not None else []

        async def tag() -> Any:
            # The listed document first (its etag guards the PUT: no read needed); when
            # someone changed the NIC since (412), read it again and write on that.
            for attempt in range(_RECORD_ATTEMPTS):
                doc = (
                    listed.pop()
                    if listed
                    else await get_json(self._session, "network", sub, nic.id, {})
                )
                if doc is None:
                    raise ConfigurationError(f"the NIC {nic.id} no longer exists")
                tags = dict(doc.get("tags") or {})
                if wanted:
                    tags[ADDRESS_TAG] = ",".join(wanted)
                else:
                    tags.pop(ADDRESS_TAG, None)
                if tags == (doc.get("tags") or {}):
                    return doc
                doc["tags"] = tags
                etag = doc.get("etag")
                headers = {"If-Match": etag} if isinstance(etag, str) else {}
                try:
                    # at the api-version the NIC was read with (put_json): written back whole
                    answer = await put_json(self._session, "network", sub, nic.id, doc, headers)
                except HttpResponseError as exc:
                    if exc.status_code == 412 and attempt + 1 < _RECORD_ATTEMPTS:
                        _log.info("NIC %s changed since it was read; reading it again", nic_name)
                        continue
                    raise
                if wait:
                    try:
                        await wait_for_operation(client, answer.headers, self._session)
                    except HttpResponseError as exc:
                        raise lro_failure(exc, what="the network operation") from exc
                return doc
            raise AssertionError("unreachable")  # pragma: no cover

        _log.info("recording the addresses %s in NIC %s's tag", ",".join(wanted) or "-", nic_name)
        await self._retry(
            tag,
            what=f"tagging NIC {nic_name} with the addresses wac_azure's rules name",
            action="Microsoft.Network/networkInterfaces/write",
        )

    async def record_after(
        self, facts: VmFacts, result: ApplyResult, plan: NetworkPlan
    ) -> tuple[str, ...] | None:
        """:meth:`record_addresses` for the VM's NSGs once ``result`` (of ``plan``) is
        written; a VM without a record gets one only when a rule was written for it."""
        return await self.record_addresses(
            facts, nsgs_after(facts, result.plan or plan), wrote=result.changed
        )

    # -- removing ---------------------------------------------------------------------

    async def plan_removal(
        self,
        target: VmTarget | str,
        *,
        facts: VmFacts | None = None,
        ports: Iterable[int] = (),
        timeout: float | None = None,
    ) -> NetworkPlan:
        """The deletions :meth:`remove` would make (rules wac_azure owns only; ``ports``:
        the VM's WAC ports besides 6516 and its deployed extension's, on which rules of
        earlier versions are adopted)."""
        wanted = check_ports(ports)

        async def run() -> NetworkPlan:
            found = facts if facts is not None else await self._facts(target)
            return removal_plan([found], ports=wanted)

        return await within(run(), timeout, "planning the removal of network rules")

    async def remove(
        self,
        target: VmTarget | str,
        *,
        facts: VmFacts | None = None,
        ports: Iterable[int] = (),
        timeout: float | None = None,
    ) -> ApplyResult:
        """Take the VM out of the rules wac_azure created on its NIC and subnet NSGs.

        A rule counts as ours when it carries a valid ownership mark (or is an
        earlier version's rule for the VM, see docs/security.md); no other rule
        is touched, and rules that say ``Managed by wac_azure`` without proof
        are reported in :attr:`ApplyResult.unowned` and logged at WARNING. Our
        rules list the VMs they serve by private IP: the VM's IPs are removed
        from them and a rule is deleted only when no VM is left in it, so other
        VMs behind a shared NSG keep their access.
        """
        wanted = check_ports(ports)  # before any read

        async def run() -> ApplyResult:
            found = facts if facts is not None else await self._facts(target)
            plan = await self.plan_removal(target, facts=found, ports=wanted)
            result = await self._apply(plan)
            await self.record_after(found, result, plan)
            return result

        return await within(run(), timeout, "removing the network rules")


async def _settled(
    session: AzureSession, answer: list[Any], rule_id: str, body: Any, *, what: str
) -> None:
    """:func:`settle_rule_write` for ARM's ``answer`` to a write; an operation that ended
    Failed becomes OperationFailedError, as :func:`_finish` makes it."""
    headers = answer[-1].http_response.headers if answer else {}
    try:
        await settle_rule_write(session, headers, rule_id, body, what=what)
    except HttpResponseError as exc:
        raise lro_failure(exc, what="the network operation") from exc


async def _finish(poller: Any) -> Any:
    """Wait for a long-running operation; one that ended Failed becomes OperationFailedError
    (so the retry policy can tell a transient failure such as ``OperationPreempted``)."""
    try:
        return await poller.result()
    except HttpResponseError as exc:
        raise lro_failure(exc, what="the network operation") from exc


def _last(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1]


def _key(change: RuleChange) -> tuple[str, str, str, str]:
    body = json.dumps(change.body, sort_keys=True)
    return (change.action.value, change.nsg_id.lower(), (change.rule_name or "").lower(), body)


def _refuse_blocked(plan: NetworkPlan) -> None:
    if plan.blocking:
        reasons = "; ".join(b.reason for b in plan.blocking)
        raise PlanBlockedError(
            f"the network plan has {len(plan.blocking)} blocking conflict(s): {reasons}",
            plan=plan,
        )
