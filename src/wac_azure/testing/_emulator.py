"""ArmEmulator: the facade over the backend, the routes and the fronts.

It owns the state (``backend``), answers every request through its single entry point
(auth, throttling, faults, routing to ``routes``, which it passes itself to as their
``RouteContext``), builds realistic resources, and hands out the fronts (``fronts``),
which it passes itself to as their ``EmulatorHost``. Nothing below imports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime as dt
import fnmatch
import ipaddress
import json
import logging
import math
import random
import secrets
import time
import traceback
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

import attrs

from wac_azure import AzureSession, VmTarget
from wac_azure.testing.backend import netpath
from wac_azure.testing.backend.builders import (
    OS_CATALOG,
    make_nic,
    make_nsg,
    make_public_ip,
    make_subnet,
    make_vm,
    make_vnet,
)
from wac_azure.testing.backend.builders import vm_memory_mib as size_memory_mib
from wac_azure.testing.backend.conflicts import NSG_OUTCOMES, VM_OUTCOMES, ConflictPolicy
from wac_azure.testing.backend.faults import Fault, FaultInjector, FaultKind
from wac_azure.testing.backend.guest import GuestModel
from wac_azure.testing.backend.nsgeval import Verdict
from wac_azure.testing.backend.operations import Operation, OperationTable, Outcome
from wac_azure.testing.backend.redact import redact_body, redact_headers
from wac_azure.testing.backend.runtime import VmRuntime, runtime_of
from wac_azure.testing.backend.seed import seed_document
from wac_azure.testing.backend.state import ArmError, Store, clone, new_etag, parse_id
from wac_azure.testing.backend.throttle import Throttle, ThrottleConfig, request_class
from wac_azure.testing.backend.wire import ConnectionReset, EmuRequest, EmuResponse
from wac_azure.testing.fronts.server import serve as serve_https
from wac_azure.testing.fronts.transport import EmulatorTransport, StaticTokenCredential
from wac_azure.testing.routes.compute import ROUTES as COMPUTE_ROUTES
from wac_azure.testing.routes.network import ROUTES as NETWORK_ROUTES
from wac_azure.testing.routes.network import normalise_rule_props
from wac_azure.testing.routes.resources import ROUTES as RESOURCE_ROUTES
from wac_azure.testing.routes.router import Router

__all__ = [
    "DEFAULT_RESOURCE_GROUP",
    "DEFAULT_SUBSCRIPTION",
    "ArmEmulator",
    "InternalError",
    "RequestRecord",
]

_log = logging.getLogger(__name__)

#: The subscription builders use unless told otherwise.
DEFAULT_SUBSCRIPTION = "00000000-0000-0000-0000-000000000001"
#: The resource group builders use unless told otherwise.
DEFAULT_RESOURCE_GROUP = "rg-wac"

#: Resources per page of ARM's generic resources list (``GET .../resources``): ARM answers
#: up to 1,000 a page with a ``nextLink`` beyond (docs/emulator.md, "Paging").
GENERIC_PAGE_SIZE = 1000

#: The base URL of the in-process front.
IN_PROCESS_BASE_URL = "https://arm.emulator.localhost"

_PRINCIPAL_ID = "5f8b2c1e-0d4a-4c1b-9a77-3e2f6d5c4b3a"
_CLIENT = "emulator-user@contoso.example"

_WRITE_METHODS = frozenset({"PUT", "PATCH", "POST", "DELETE"})

# Set while a request runs: an ``lro_failed`` fault that the operation it starts must honour.
_LRO_FAULT: contextvars.ContextVar[Fault | None] = contextvars.ContextVar(
    "wac_azure_emulator_lro_fault", default=None
)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _parse(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


@attrs.frozen
class RequestRecord:
    """One request the emulator answered (for assertions and counting).

    ``status`` is 0 when no answer was sent (an injected connection reset). The
    request's and the answer's headers and bodies are there too, with their secrets
    replaced by ``REDACTED`` (``testing/backend/redact.py``: the ``Authorization``
    header's token, cookies, ``protectedSettings``, ``protectedParameters``, a Run
    Command's parameter values, values named password, secret or token).
    ``request_json`` and ``response_json`` are the bodies parsed (``None`` when empty
    or not JSON).
    """

    method: str
    path: str
    status: int
    query: dict[str, str] = attrs.field(factory=dict)
    subscription_id: str | None = None
    _request: EmuRequest | None = attrs.field(default=None, repr=False, eq=False, kw_only=True)
    _response: EmuResponse | None = attrs.field(default=None, repr=False, eq=False, kw_only=True)

    @property
    def request_headers(self) -> dict[str, str]:
        """The request's headers (names in lower case), secrets redacted."""
        return redact_headers(self._request.headers) if self._request is not None else {}

    @property
    def request_body(self) -> str:
        """The request's body as text, secrets redacted (``""`` when it had none)."""
        if self._request is None:
            return ""
        return redact_body(self._request.body, path=self.path)

    @property
    def request_json(self) -> Any:
        """The request's body parsed as JSON, secrets redacted (``None`` if not JSON)."""
        return _parse(self.request_body)

    @property
    def response_headers(self) -> dict[str, str]:
        """The answer's headers, secrets redacted (``{}`` when none was sent)."""
        return redact_headers(self._response.headers) if self._response is not None else {}

    @property
    def response_body(self) -> str:
        """The answer's body as text, secrets redacted (``""`` when empty or not sent)."""
        return redact_body(self._response.body) if self._response is not None else ""

    @property
    def response_json(self) -> Any:
        """The answer's body parsed as JSON, secrets redacted (``None`` if not JSON)."""
        return _parse(self.response_body)

    @property
    def is_write(self) -> bool:
        """PUT, PATCH, POST or DELETE."""
        return self.method in _WRITE_METHODS

    @property
    def is_poll(self) -> bool:
        """A GET of an operation-status resource."""
        low = self.path.lower()
        return self.method == "GET" and ("/operations/" in low or "/operationresults/" in low)


@attrs.frozen
class InternalError:
    """An exception a route handler raised (an emulator bug), answered with a 500."""

    method: str
    path: str
    exception: BaseException = attrs.field(eq=False)
    traceback: str = attrs.field(default="", repr=False, eq=False)

    @property
    def error_type(self) -> str:
        """The exception's class name (``KeyError``...)."""
        return type(self.exception).__name__

    def __str__(self) -> str:
        return f"{self.method} {self.path}: {self.error_type}: {self.exception}"


class _NoFaults:
    """Stand-in when no fault injector is wanted."""

    def pick(self, req: EmuRequest) -> Fault | None:
        return None


def _sub_of(path: str) -> str | None:
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 2 and parts[0].lower() == "subscriptions":
        return parts[1]
    return None


class ArmEmulator:
    """An Azure Resource Manager emulator for Compute and Network, in one process.

    Keyword-only options:

    * ``seed`` – makes generated values (IPs, faults) reproducible.
    * ``lro_polls`` – polls after which a long-running operation completes (default 1).
    * ``lro_seconds`` – complete operations after this many emulated seconds instead.
    * ``extension_seconds`` – how long extension installs and removals take (emulated
      seconds), overriding ``lro_seconds`` for them (a benchmark's fixed install time).
    * ``extension_jitter`` – spread of the extension times: each install or removal takes
      ``extension_seconds × U(1 − j, 1 + j)`` (drawn from ``seed``; 0, the default, keeps
      them all equal). Real installs do not all take the same time: the guest downloads and
      installs Windows Admin Center at its own pace.
    * ``latency`` – emulated seconds added to every request before it is answered (ARM's
      round trip: 0 by default; the fleet benchmark uses 0.15). It is a real wait of
      ``latency × time_scale`` on both fronts, per request, so requests in flight overlap
      as they do against Azure.
    * ``time_scale`` – real seconds per emulated second (``0.01`` runs time 100× faster):
      operations with ``lro_seconds=T`` take ``T * time_scale`` real seconds, and the
      throttle's buckets refill ``1 / time_scale`` times faster; ``Retry-After`` headers
      are in real seconds.
    * ``throttle`` – a :class:`ThrottleConfig` (Azure's token buckets); ``None`` never
      refuses but still sends the ``x-ms-ratelimit-remaining-*`` headers.
    * ``faults`` – a :class:`FaultInjector`; by default an empty one seeded with ``seed``.
    * ``page_size`` – items per page of list answers (``nextLink`` beyond).
    * ``generic_page_size`` – items per page of ARM's generic resources list
      (``GET .../resources``); ``None`` (the default) pages it as ARM does, at 1,000
      (docs/emulator.md), whatever ``page_size`` says.
    * ``nsg_conflicts`` – how Network answers a write to an NSG while another write to it
      runs: ``"429"`` (``RetryableErrorDueToAnotherOperation``, the default),
      ``"supersede"`` (accept it; the running one ends ``Canceled`` and its write is undone),
      ``"409"`` (``AnotherOperationInProgress``), or a mapping of them to weights, chosen
      per conflict from ``seed`` (AZURE_FACTS §5).
    * ``vm_conflicts`` – the same for a second extension write on a VM while one runs:
      ``"409"`` (Compute's ``Conflict``, the default) or ``"preempt"`` (accept it; the
      running one ends ``Canceled`` / ``OperationPreempted``), or weights of both.
    * ``lro_retry_after`` – send ``Retry-After`` on long-running-operation answers (201/202
      and in-progress polls). Off by default: real ARM seldom sends it (AZURE_FACTS §6, no
      recording has one), so clients poll at their own ``polling_interval``.
    """

    def __init__(
        self,
        *,
        seed: int = 0,
        lro_polls: int = 1,
        lro_seconds: float | None = None,
        extension_seconds: float | None = None,
        extension_jitter: float = 0.0,
        latency: float = 0.0,
        time_scale: float = 1.0,
        throttle: ThrottleConfig | Throttle | None = None,
        faults: FaultInjector | None = None,
        page_size: int = 50,
        generic_page_size: int | None = None,
        lro_retry_after: bool = False,
        nsg_conflicts: str | dict[str, float] = "429",
        vm_conflicts: str | dict[str, float] = "409",
    ) -> None:
        if lro_polls < 0:
            raise ValueError("lro_polls must be >= 0")
        if lro_seconds is not None and lro_seconds < 0:
            raise ValueError("lro_seconds must be >= 0 (or None to count polls)")
        if extension_seconds is not None and extension_seconds < 0:
            raise ValueError("extension_seconds must be >= 0 (or None)")
        if not 0.0 <= extension_jitter < 1.0:
            raise ValueError("extension_jitter must be in [0, 1)")
        if not latency >= 0:
            raise ValueError("latency must be >= 0 seconds")
        if not time_scale > 0:
            raise ValueError("time_scale must be > 0")
        if page_size < 1:
            raise ValueError("page_size must be >= 1")
        if generic_page_size is not None and generic_page_size < 1:
            raise ValueError("generic_page_size must be >= 1 (or None for ARM's 1,000)")
        self.random_seed = seed
        self.lro_polls = lro_polls
        self.lro_seconds = lro_seconds
        self.extension_seconds = extension_seconds
        self.extension_jitter = float(extension_jitter)
        self.latency = float(latency)
        self._durations = random.Random(f"wac_azure.testing:durations:{seed}")
        self.time_scale = float(time_scale)
        self.page_size = page_size
        #: Items per page of the generic resources list (ARM's 1,000 unless set).
        self.generic_page_size = (
            GENERIC_PAGE_SIZE if generic_page_size is None else generic_page_size
        )
        self.lro_retry_after = bool(lro_retry_after)
        #: How overlapping NSG writes are answered (seeded; ``counts`` per outcome).
        self.nsg_conflicts = ConflictPolicy(nsg_conflicts, seed=seed, allowed=NSG_OUTCOMES)
        #: How overlapping VM extension writes are answered (seeded).
        self.vm_conflicts = ConflictPolicy(vm_conflicts, seed=seed, allowed=VM_OUTCOMES)
        #: The bearer token requests must carry (a random test value, not a secret).
        self.token = secrets.token_urlsafe(24)
        self.store = Store()
        self.ops = OperationTable()
        self.vms: dict[str, VmRuntime] = {}
        self.requests: list[RequestRecord] = []
        self._denied: list[str] = []
        self._rng = random.Random(seed)
        # Generated IDs come from the seed: same seed, same requests, same paths.
        self._operation_ids = random.Random(f"wac_azure.testing:operations:{seed}")
        self._request_ids = random.Random(f"wac_azure.testing:requests:{seed}")
        #: Exceptions raised inside route handlers (emulator bugs), answered with a 500.
        self.internal_errors: list[InternalError] = []
        self._t0 = time.monotonic()
        self._skew = 0.0
        self._ip_counter: dict[str, int] = {}
        self._pip_counter = 0
        if isinstance(throttle, Throttle):
            self.throttle = throttle
        else:
            self.throttle = Throttle(
                throttle if throttle is not None else ThrottleConfig(enabled=False),
                clock=self.real_clock,
                time_scale=1.0 / self.time_scale,
            )
        self.faults: FaultInjector = faults if faults is not None else FaultInjector(seed)
        self._router = Router()
        for r in (RESOURCE_ROUTES, COMPUTE_ROUTES, NETWORK_ROUTES):
            self._router.extend(r)

    # -- time ---------------------------------------------------------------------

    def clock(self) -> float:
        """Emulated seconds since the emulator started."""
        return (self.real_clock() - self._t0) / self.time_scale

    def real_clock(self) -> float:
        """Monotonic real seconds, plus every virtual sleep so far."""
        return time.monotonic() + self._skew

    @property
    def virtual_time(self) -> bool:
        """Whether the in-process transport's sleeps are virtual (no timed operations)."""
        return self.lro_seconds is None and self.extension_seconds is None

    async def clock_sleep(self, seconds: float) -> None:
        """Sleep as a client would: instantly in virtual time (no ``lro_seconds``), else really.

        Durations here are what a client waits (``Retry-After``, which the emulator already
        scales by ``time_scale``, or a polling interval); they are not scaled again.
        """
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        if self.virtual_time:
            self._skew += seconds
            await asyncio.sleep(0)
        else:
            await asyncio.sleep(seconds)

    def extension_duration(self) -> float | None:
        """How long the next extension install or removal takes (emulated seconds):
        ``extension_seconds`` spread by ``extension_jitter`` (``None``: by polls)."""
        base = self.extension_seconds
        if base is None or not self.extension_jitter:
            return base
        j = self.extension_jitter
        return base * self._durations.uniform(1.0 - j, 1.0 + j)

    # -- the entry point ----------------------------------------------------------

    async def handle(self, req: EmuRequest) -> EmuResponse:
        """Answer one request: auth, faults, throttling, routing; every request is recorded."""
        sub = _sub_of(req.path)
        status = 0
        resp: EmuResponse | None = None
        if self.latency > 0:
            # ARM's round trip: a real wait, so that concurrent requests overlap.
            await asyncio.sleep(self.latency * self.time_scale)
        try:
            resp = await self._handle(req, sub)
            status = resp.status
            return resp
        except ConnectionReset:
            status = 0
            raise
        finally:
            self.requests.append(
                RequestRecord(
                    req.method.upper(),
                    req.path,
                    status,
                    dict(req.query),
                    sub,
                    request=req,
                    response=resp,
                )
            )

    async def _handle(self, req: EmuRequest, sub: str | None) -> EmuResponse:
        auth = req.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip(), self.token):
            message = (
                "Authentication failed. The 'Authorization' header is missing."
                if not auth
                else "Authentication failed. The access token is invalid."
            )
            return EmuResponse.of_json(
                401,
                {"error": {"code": "AuthenticationFailed", "message": message}},
                {"WWW-Authenticate": 'Bearer authorization_uri="https://login.emulator.localhost"'},
            )
        # Throttling first, as in ARM: a request that reached ARM takes a token even when
        # a fault answers it, and every answer (fault answers too) carries the
        # x-ms-ratelimit-remaining-* headers. A throttled request never reaches the
        # backend, so it is never faulted.
        ok, rate_headers, retry_after = self.throttle.admit(sub, req.method)
        if not ok:
            wait = max(1, int(retry_after))
            # errors.json "arm-429-subscriptionrequeststhrottled-read" (AZURE_FACTS §6).
            kind = {"reads": "read", "writes": "write", "deletes": "delete"}[
                request_class(req.method)
            ]
            resp = EmuResponse.of_json(
                429,
                {
                    "error": {
                        "code": "SubscriptionRequestsThrottled",
                        "message": f"Number of '{kind}' requests for subscription '{sub}' "
                        f"actor '{_PRINCIPAL_ID}' exceeded. Please try again after '{wait}' "
                        "seconds after additional tokens are available. Refer to "
                        "https://aka.ms/arm-throttling for additional information.",
                    }
                },
                {"Retry-After": str(wait)},
            )
            resp.headers.update(rate_headers)
            return resp
        # Compute's own throttling, behind ARM's (AZURE_FACTS §6, [CTL]).
        admit_compute = getattr(self.throttle, "admit_compute", None)
        if admit_compute is not None:
            c_ok, c_headers, c_wait, c_body = admit_compute(sub, req.method, req.path)
            rate_headers.update(c_headers)
            if not c_ok:
                resp = EmuResponse.of_json(
                    429, c_body, {"Retry-After": str(max(1, int(c_wait))), **rate_headers}
                )
                resp.headers.setdefault("x-ms-request-id", self._new_uuid(self._request_ids))
                return resp
        fault = self.faults.pick(req)
        lro_fault: Fault | None = None
        if fault is not None:
            kind = FaultKind(fault.kind)
            if kind is FaultKind.RECORDED:
                resp = fault.to_response(rate_headers)
                resp.headers.setdefault("x-ms-request-id", self._new_uuid(self._request_ids))
                return resp
            if kind is FaultKind.STATUS:
                headers = dict(rate_headers)
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(int(fault.retry_after))
                resp = EmuResponse.of_json(
                    fault.status, {"error": {"code": fault.code, "message": fault.message}}, headers
                )
                resp.headers.setdefault("x-ms-request-id", self._new_uuid(self._request_ids))
                return resp
            if kind is FaultKind.RESET:
                raise ConnectionReset(f"injected connection reset on {req.method} {req.path}")
            if kind is FaultKind.SLOW:
                if req.front == "https":
                    # A real socket: the client's timeouts run on real time.
                    await asyncio.sleep(fault.delay)
                else:
                    await self.clock_sleep(fault.delay)
            elif kind in (FaultKind.LRO_FAILED, FaultKind.OPERATION_RESULT):
                lro_fault = fault
        token_ = _LRO_FAULT.set(lro_fault)
        try:
            resp = await self._route(req)
        finally:
            _LRO_FAULT.reset(token_)
        resp.headers.update(rate_headers)
        resp.headers.setdefault("x-ms-request-id", self._new_uuid(self._request_ids))
        return resp

    async def _route(self, req: EmuRequest) -> EmuResponse:
        self.ops.tick(self.clock())
        handler, params, known = self._router.match(req.method, req.path)
        try:
            if handler is None:
                if known:
                    raise ArmError(
                        405,
                        "MethodNotAllowed",
                        f"The requested resource does not support http method '{req.method}'.",
                    )
                raise self._unknown_route(req)
            self._authorize(req)
            return await handler(self, req, params)
        except ArmError as err:
            return EmuResponse.of_json(err.status, err.body(), err.headers)
        except ConnectionReset:
            raise
        except Exception as exc:
            # An emulator bug: answer as ARM's own 500 would, and keep it visible
            # (azure-core retries 500s, so a bare 500 could go unnoticed).
            record = InternalError(req.method.upper(), req.path, exc, traceback.format_exc())
            self.internal_errors.append(record)
            _log.error(
                "emulator bug on %s %s: %s: %s\n%s",
                record.method,
                record.path,
                record.error_type,
                exc,
                record.traceback,
            )
            return EmuResponse.of_json(
                500,
                {
                    "error": {
                        "code": "InternalServerError",
                        "message": f"emulator bug: {record.error_type}: {exc}",
                    }
                },
            )

    def _unknown_route(self, req: EmuRequest) -> ArmError:
        info = parse_id(req.path)
        api = req.query.get("api-version", "")
        if "type" in info:
            ns, _, rtype = info["type"].partition("/")
            return ArmError(
                404 if req.method.upper() != "PUT" else 400,
                "InvalidResourceType",
                f"The resource type '{rtype or ns}' could not be found in the namespace "
                f"'{ns}' for api version '{api}'.",
            )
        return ArmError(
            404,
            "InvalidResourceType",
            f"The resource type could not be found for the request path '{req.path}' "
            f"and api version '{api}'.",
        )

    # -- RBAC denials ---------------------------------------------------------------

    def deny(self, action_glob: str) -> None:
        """Answer 403 ``AuthorizationFailed`` to requests whose action matches ``action_glob``.

        Actions are ARM's, e.g. ``Microsoft.Network/networkSecurityGroups/securityRules/write``,
        ``Microsoft.Compute/virtualMachines/runCommand/action``; globs use ``*``.
        """
        self._denied.append(action_glob)

    def allow_all(self) -> None:
        """Forget every :meth:`deny`."""
        self._denied.clear()

    @staticmethod
    def action_of(method: str, path: str) -> tuple[str, str]:
        """``(action, scope)`` of a request, as ARM's authorization names them."""
        parts = [p for p in path.split("/") if p]
        low = [p.lower() for p in parts]
        if "providers" not in low:
            # subscription / resource-group level
            if "resourcegroups" in low:
                i = low.index("resourcegroups")
                scope = "/" + "/".join(parts[: i + 2])
                if len(parts) > i + 2 and low[i + 2] == "resources":
                    return "Microsoft.Resources/subscriptions/resourceGroups/resources/read", scope
                verb = {"PUT": "write", "DELETE": "delete"}.get(method.upper(), "read")
                return f"Microsoft.Resources/subscriptions/resourceGroups/{verb}", scope
            scope = "/" + "/".join(parts[:2])
            return "Microsoft.Resources/subscriptions/resources/read", scope
        i = len(low) - 1 - low[::-1].index("providers")
        ns = parts[i + 1] if len(parts) > i + 1 else ""
        rest = parts[i + 2 :]
        types = [rest[j] for j in range(0, len(rest), 2)]
        scope = "/" + "/".join(parts[: i + 2 + 2 * (len(rest) // 2)])
        m = method.upper()
        if m == "POST" and len(rest) % 2 == 1:
            return "/".join([ns, *types]) + "/action", scope
        verb = {"PUT": "write", "PATCH": "write", "DELETE": "delete"}.get(m, "read")
        return "/".join([ns, *types, verb]), scope

    def _authorize(self, req: EmuRequest) -> None:
        if not self._denied:
            return
        low = req.path.lower()
        if "/operations/" in low or "/operationresults/" in low:
            return
        action, scope = self.action_of(req.method, req.path)
        for pattern in self._denied:
            if fnmatch.fnmatchcase(action.lower(), pattern.lower()):
                raise ArmError(
                    403,
                    "AuthorizationFailed",
                    f"The client '{_CLIENT}' with object id '{_PRINCIPAL_ID}' does not have "
                    f"authorization to perform action '{action}' over scope '{scope}' or the "
                    "scope is invalid. If access was recently granted, please refresh your "
                    "credentials.",
                )

    # -- operations -----------------------------------------------------------------

    def restorer(self, resource_id: str, before: dict[str, Any] | None) -> Callable[[], None]:
        """An ``on_abort`` callback that puts ``before`` back (or deletes what was new)."""

        def abort() -> None:
            if before is None:
                self.store.delete(resource_id)
            else:
                self.store.put(before)

        return abort

    def start_operation(
        self,
        req: EmuRequest,
        *,
        namespace: str,
        location: str,
        resource_id: str,
        kind: str,
        on_success: Callable[[], Outcome] | None = None,
        on_abort: Callable[[], None] | None = None,
        duration: float | None = None,
        on_fail: Callable[[dict[str, Any]], None] | None = None,
    ) -> tuple[Operation, dict[str, str]]:
        """Start an operation; returns it and the headers announcing it.

        ``duration`` overrides the emulator's ``lro_seconds`` for this operation.
        """
        fault = _LRO_FAULT.get()
        sub = _sub_of(req.path) or DEFAULT_SUBSCRIPTION
        op = Operation(
            id=self._new_uuid(self._operation_ids),
            namespace=namespace,
            location=_loc(location),
            subscription=sub,
            resource_id=resource_id,
            kind=kind,
            started=self.clock(),
            duration=duration if duration is not None else self.lro_seconds,
            polls_needed=self.lro_polls,
            on_success=on_success,
            on_abort=on_abort,
            forced_failure=(fault.code, fault.message)
            if fault is not None and fault.kind is FaultKind.LRO_FAILED
            else None,
            forced_result=fault.body_json()
            if fault is not None and fault.kind is FaultKind.OPERATION_RESULT
            else None,
            keep_on_failure=fault is not None and fault.keep,
            on_fail=on_fail,
        )
        self.ops.add(op)
        if op.due(self.clock()):
            op.finish()
        base = _base_url(req)
        api = urllib.parse.quote(req.query.get("api-version", "2024-01-01"))
        status_url = urllib.parse.quote(op.status_path())
        result_url = urllib.parse.quote(op.result_path())
        headers = {"Azure-AsyncOperation": f"{base}{status_url}?api-version={api}"}
        if self.lro_retry_after:
            headers["Retry-After"] = self._retry_after(op)
        if kind != "put":
            if namespace.lower() == "microsoft.compute":
                # Compute: both headers point at operations/{id}; Location adds
                # ?monitor=true (recordings: test_vm_extensions, test_vm_run_command_e2e).
                headers["Location"] = f"{base}{status_url}?monitor=true&api-version={api}"
            else:
                # Network: Location is .../operationResults/{id} (test_network_security_groups).
                headers["Location"] = f"{base}{result_url}?api-version={api}"
        return op, headers

    @staticmethod
    def _new_uuid(rng: random.Random) -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def _retry_after(self, op: Operation) -> str:
        if op.duration is None or op.done:
            return "0"
        remaining = max(0.0, op.started + op.duration - self.clock())
        real = min(remaining, 10.0) * self.time_scale
        # Whole seconds, as ARM sends them: the SDKs' generated code parses Retry-After as
        # an int, so a fraction ("0.05") breaks them. Under a real second:
        # * real time (time_scale >= 1): "1", never "0", which would make azure-core fall
        #   back to its polling_interval (30 s by default);
        # * compressed time (time_scale < 1): "0", so the client polls at its own
        #   (compressed) polling_interval; emu.session() and srv.session() default it small.
        if real >= 1:
            return str(math.ceil(real))
        return "1" if self.time_scale >= 1 else "0"

    def operation_status(self, req: EmuRequest, op_id: str) -> EmuResponse:
        if str(req.query.get("monitor", "")).lower() == "true":
            # Compute's Location URL: operations/{id}?monitor=true answers as a Location poll.
            return self.operation_result(req, op_id)
        op = self._op(op_id)
        if not op.done:
            op.polls += 1
            if op.due(self.clock()):
                op.finish()
        headers = {} if op.done or not self.lro_retry_after else self._retry_header(op)
        return EmuResponse.of_json(200, op.status_body(), headers)

    def _retry_header(self, op: Operation) -> dict[str, str]:
        return {"Retry-After": self._retry_after(op)} if self.lro_retry_after else {}

    def operation_result(self, req: EmuRequest, op_id: str) -> EmuResponse:
        op = self._op(op_id)
        if not op.done:
            op.polls += 1
            if op.due(self.clock()):
                op.finish()
        if not op.done:
            return EmuResponse(202, {"Location": req.url, **self._retry_header(op)}, b"")
        outcome = op.outcome or Outcome()
        if outcome.status != "Succeeded":
            err = outcome.error or {"code": "InternalServerError", "message": "failed"}
            return EmuResponse.of_json(400, {"error": err})
        if outcome.result is None:
            return EmuResponse(204 if op.kind == "delete" else 200, {}, b"")
        return EmuResponse.of_json(200, outcome.result)

    def _op(self, op_id: str) -> Operation:
        op = self.ops.get(op_id)
        if op is None:
            raise ArmError(404, "OperationNotFound", f"The operation '{op_id}' could not be found.")
        return op

    def nsg_conflict(self, resource_id: str) -> str:
        """How to answer a write overlapping a running one on this NSG (seeded choice)."""
        return self.nsg_conflicts.choose(resource_id)

    def vm_conflict(self, resource_id: str) -> str:
        """How to answer a VM extension write overlapping a running one (seeded choice)."""
        return self.vm_conflicts.choose(resource_id)

    def busy(self, resource_id: str) -> Operation | None:
        """A pending operation on ``resource_id`` or anything under it."""
        return self.ops.first_under(resource_id)

    def touch(self, path: str) -> None:
        """A GET of ``path`` counts as a poll of the operations on resources under it."""
        self.ops.touch(path, self.clock())

    # -- resource-group and lookup helpers -------------------------------------------

    def require_rg(self, sub: str, rg: str) -> dict[str, Any]:
        """The resource group, or ARM's 404 ``ResourceGroupNotFound``."""
        return self.store.require_rg(sub, rg)

    def require(self, resource_id: str) -> dict[str, Any]:
        """The resource, or ARM's 404 for it (or for its resource group)."""
        return self.store.require(resource_id)

    def runtime(self, vm_id: str) -> VmRuntime:
        """The VM's runtime record (made on first use)."""
        return runtime_of(self.vms, self.store, vm_id)

    # -- the network path of a VM ------------------------------------------------------

    def vm_nics(self, vm: dict[str, Any]) -> list[dict[str, Any]]:
        """The stored NICs of the VM's network profile."""
        return netpath.vm_nics(self.store, vm)

    def primary_nic(self, vm: dict[str, Any]) -> dict[str, Any] | None:
        """The VM's primary NIC (see ``backend.netpath.primary_nic``)."""
        return netpath.primary_nic(self.store, vm)

    def subnet(self, subnet_id: str) -> dict[str, Any] | None:
        """The subnet with this ID, as its VNet embeds it, or ``None``."""
        return netpath.subnet(self.store, subnet_id)

    def outbound_verdict(self, vm: dict[str, Any], tag: str, port: int = 443) -> Verdict:
        """Whether the VM's primary NIC path lets TCP ``port`` out to service tag ``tag``."""
        return netpath.outbound_verdict(self.store, vm, tag, port)

    def vm_memory_mib(self, vm: dict[str, Any]) -> int | None:
        """The memory of the VM's size in MiB (``None`` for an unknown size)."""
        return size_memory_mib(vm)

    # -- builders ----------------------------------------------------------------------

    def add_windows_vm(
        self,
        name: str,
        *,
        os: str = "2022",
        size: str = "Standard_D2s_v3",
        location: str = "westeurope",
        power_state: str = "running",
        public_ip: bool = False,
        nsg: str | None = "nic",
        subscription_id: str = DEFAULT_SUBSCRIPTION,
        resource_group: str = DEFAULT_RESOURCE_GROUP,
        vnet: str | None = None,
        subnet: str | None = None,
        started_at: dt.datetime | None = None,
        nics: int = 1,
        custom_image: bool = False,
        report_os: bool = True,
        gateway: str = "modern",
    ) -> VmTarget:
        """Build a realistic VM with NIC(s), VNet/subnet, NSG(s) and optionally a public IP.

        Names: NIC ``{name}-nic`` (``{name}-nic2``... for more), NIC NSG ``{name}-nsg``,
        VNet ``vnet-{location}`` (10.0.0.0/16, shared by the resource group's VMs in that
        location), public IP ``{name}-ip`` (Standard SKU). ``nsg`` is ``"nic"``,
        ``"subnet"``, ``"both"`` or ``None``. ``os`` is one of ``2012-R2``, ``2016``,
        ``2019``, ``2022``, ``2025``, ``windows-11``, ``ubuntu-22.04``.

        Subnets: without ``subnet=``, VMs without a subnet NSG (``nsg="nic"``/``None``) go
        into subnet ``default`` and VMs with one (``"subnet"``/``"both"``) into subnet
        ``default-nsg``, whose NSG ``{vnet}-default-nsg`` they all share; so a subnet NSG
        never reaches a VM that did not ask for one. With ``subnet=`` the VM goes into that
        subnet and a subnet NSG (``{vnet}-{subnet}-nsg``) attaches to the subnet, that is
        to every VM in it. Each subnet is the next free ``/24`` of the VNet and takes 250
        NICs; the next NICs go into ``{subnet}-2``, ``{subnet}-3``... (same NSG).

        ``custom_image=True`` gives the VM a gallery image (``imageReference`` has only an
        ``id``); ``report_os=False`` keeps ``osName``/``osVersion`` out of the instance view
        (an agent that does not report them). ``nics`` adds secondary NICs without NSGs.

        ``gateway`` is the Windows Admin Center gateway an install of the extension leaves
        in the guest: ``"modern"`` (default; extension 0.24.0.0 and later: appsettings.json,
        service ``WindowsAdminCenter``, rule ``WacInboundOpenException``, no ``SmePort``) or
        ``"legacy"`` (``SmePort``, service ``ServerManagementGateway``, rule
        ``SmeInboundOpenException``); see :class:`~wac_azure.testing.GuestModel`.
        """
        if gateway not in ("modern", "legacy"):
            raise ValueError(f"gateway must be 'modern' or 'legacy'; got {gateway!r}")
        spec = OS_CATALOG.get(os)
        if spec is None:
            raise ValueError(f"unknown os {os!r}; use one of {', '.join(OS_CATALOG)}")
        if nsg not in ("nic", "subnet", "both", None):
            raise ValueError(f"nsg must be 'nic', 'subnet', 'both' or None; got {nsg!r}")
        if power_state not in ("running", "deallocated", "stopped"):
            raise ValueError("power_state must be 'running', 'deallocated' or 'stopped'")
        target = VmTarget.from_parts(subscription_id, resource_group, name)
        sub, rg = subscription_id, resource_group
        self.store.ensure_resource_group(sub, rg, location)
        vnet_name = vnet or f"vnet-{_loc(location)}"
        vnet_doc = self._ensure_vnet(sub, rg, vnet_name, location)
        subnet_nsg_id = None
        if subnet is None:
            # Implicit subnet: keep subnet NSGs away from VMs that did not ask for one.
            subnet = "default-nsg" if nsg in ("subnet", "both") else "default"
            sn_nsg_name = f"{vnet_name}-{subnet}"
        else:
            sn_nsg_name = f"{vnet_name}-{subnet}-nsg"
        if nsg in ("subnet", "both"):
            subnet_nsg_id = self._ensure_nsg(sub, rg, sn_nsg_name, location)["id"]
        nic_nsg_id = None
        if nsg in ("nic", "both"):
            nic_nsg_id = self._ensure_nsg(sub, rg, f"{name}-nsg", location)["id"]
        vm_id = target.resource_id
        nic_ids = []
        for i in range(max(1, nics)):
            pip_id = None
            if public_ip and i == 0:
                self._pip_counter += 1
                n = self._pip_counter
                address = f"20.{(self.random_seed % 200) + 10}.{n // 250}.{n % 250 + 1}"
                pip = make_public_ip(sub, rg, f"{name}-ip", location, address)
                self.store.put(pip)
                pip_id = pip["id"]
            nic_name = f"{name}-nic" if i == 0 else f"{name}-nic{i + 1}"
            subnet_doc = self._subnet_with_room(vnet_doc, subnet, subnet_nsg_id)
            nic = make_nic(
                sub,
                rg,
                nic_name,
                location,
                subnet_id=subnet_doc["id"],
                private_ip=self._next_ip(subnet_doc),
                vm_id=vm_id,
                nsg_id=nic_nsg_id if i == 0 else None,
                public_ip_id=pip_id,
            )
            if i > 0:
                nic["properties"]["primary"] = False
            if pip_id is not None:
                pip_doc = self.store.get(pip_id)
                if pip_doc is not None:
                    pip_doc["properties"]["ipConfiguration"] = {
                        "id": nic["properties"]["ipConfigurations"][0]["id"]
                    }
            self.store.put(nic)
            nic_ids.append(nic["id"])
            subnet_doc["properties"].setdefault("ipConfigurations", []).append(
                {"id": nic["properties"]["ipConfigurations"][0]["id"]}
            )
        vm = make_vm(
            sub,
            rg,
            name,
            location,
            size=size,
            os=spec,
            nic_ids=nic_ids,
            created=_utcnow() - dt.timedelta(days=7),
        )
        if custom_image:
            vm["properties"]["storageProfile"]["imageReference"] = {
                "id": f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/"
                f"galleries/gallery1/images/{name}-image/versions/1.0.0"
            }
        self.store.put(vm)
        rt = VmRuntime(
            power_state=power_state,
            started_at=(started_at or _utcnow() - dt.timedelta(hours=2))
            if power_state == "running"
            else None,
            os_name=spec.os_name if report_os else None,
            os_version=spec.os_version if report_os else None,
            guest=GuestModel(gateway=gateway, location=location),
        )
        self.vms[vm_id.lower()] = rt
        return target

    def _ensure_vnet(self, sub: str, rg: str, name: str, location: str) -> dict[str, Any]:
        rid = (
            f"/subscriptions/{sub}/resourceGroups/{rg}/providers/"
            f"Microsoft.Network/virtualNetworks/{name}"
        )
        doc = self.store.get(rid)
        if doc is None:
            doc = self.store.put(make_vnet(sub, rg, name, location, ["10.0.0.0/16"]))
        return doc

    #: NICs the builders put into one subnet before starting the next one.
    SUBNET_CAPACITY = 250

    def _subnet_with_room(
        self, vnet: dict[str, Any], name: str, nsg_id: str | None
    ) -> dict[str, Any]:
        """Subnet ``name`` (or ``name-2``, ``name-3``... once it holds 250 builder NICs)."""
        k = 1
        while True:
            sn = self._ensure_subnet(vnet, name if k == 1 else f"{name}-{k}", nsg_id)
            used = self._ip_counter.get(sn["id"].lower(), 3) - 3
            if used < self.SUBNET_CAPACITY:
                return sn
            k += 1

    def _ensure_subnet(self, vnet: dict[str, Any], name: str, nsg_id: str | None) -> dict[str, Any]:
        subnets = vnet["properties"].setdefault("subnets", [])
        for sn in subnets:
            if str(sn.get("name", "")).lower() == name.lower():
                if nsg_id:
                    sn["properties"]["networkSecurityGroup"] = {"id": nsg_id}
                return dict(sn)
        base = ipaddress.ip_network(vnet["properties"]["addressSpace"]["addressPrefixes"][0])
        prefix = str(base)
        if base.prefixlen <= 24:
            taken = []
            for other in subnets:
                try:
                    taken.append(
                        ipaddress.ip_network(
                            str((other.get("properties") or {}).get("addressPrefix")),
                            strict=False,
                        )
                    )
                except ValueError:
                    continue
            for candidate in base.subnets(new_prefix=24):
                if not any(candidate.overlaps(t) for t in taken if t.version == base.version):
                    prefix = str(candidate)
                    break
            else:
                raise ValueError(f"virtual network {vnet.get('name')!r} has no free /24 left")
        sn = make_subnet(vnet["id"], name, prefix, nsg_id)
        subnets.append(sn)
        return sn

    def _ensure_nsg(self, sub: str, rg: str, name: str, location: str) -> dict[str, Any]:
        rid = (
            f"/subscriptions/{sub}/resourceGroups/{rg}/providers/"
            f"Microsoft.Network/networkSecurityGroups/{name}"
        )
        doc = self.store.get(rid)
        if doc is None:
            doc = self.store.put(make_nsg(sub, rg, name, location))
        return doc

    def _next_ip(self, subnet: dict[str, Any]) -> str:
        net = ipaddress.ip_network(subnet["properties"]["addressPrefix"], strict=False)
        key = subnet["id"].lower()
        n = self._ip_counter.get(key, 3) + 1
        self._ip_counter[key] = n
        return str(net.network_address + n)

    # -- inspection / tweaks ------------------------------------------------------------

    def seed(self, document: dict[str, Any]) -> None:
        """Store any ARM resource JSON as GET returns it (fixtures, ``az vm show`` output).

        The Azure CLI's flattened output (``az vm show [-d] -o json``, ``az vm
        get-instance-view``, ``az vm extension show``, ``az network nic|nsg|public-ip|vnet
        show``: no ``properties`` envelope, ``null`` values, ``resourceGroup`` and other
        CLI-only keys) is turned back into the wire shape first; documents already in
        wire shape are stored as they are. ``powerState`` (``"VM deallocated"``) from
        ``az vm show -d`` sets the VM's power state when no instance view says otherwise.
        """
        seed_document(self.store, self.vms, document)

    def resource(self, resource_id: str) -> dict[str, Any]:
        """The stored JSON of a resource (a copy); :class:`LookupError` if there is none."""
        self.settle()
        doc = self.store.get(resource_id)
        if doc is not None:
            return clone(doc)  # type: ignore[no-any-return]
        parent_id, _, child = resource_id.rstrip("/").rpartition("/")
        parent_id, _, coll = parent_id.rpartition("/")
        parent = self.store.get(parent_id)
        if parent is not None:
            key = {"securityrules": "securityRules", "subnets": "subnets"}.get(coll.lower())
            if coll.lower() == "defaultsecurityrules":
                key = "defaultSecurityRules"
            for item in (parent.get("properties") or {}).get(key or "", []) or []:
                if str(item.get("name", "")).lower() == child.lower():
                    return clone(item)  # type: ignore[no-any-return]
        raise LookupError(f"the emulator has no resource {resource_id!r}")

    def settle(self) -> None:
        """Finish every timed operation whose time has come (requests do this too)."""
        self.ops.tick(self.clock())

    def writes(self) -> list[RequestRecord]:
        """The PUT/PATCH/POST/DELETE requests recorded so far."""
        return [r for r in self.requests if r.is_write]

    def reset(self) -> None:
        """Forget every resource, operation, request record, denial and fault rule."""
        self.store.clear()
        self.ops.clear()
        self.vms.clear()
        self.requests.clear()
        self._denied.clear()
        self._ip_counter.clear()
        self._pip_counter = 0
        self.internal_errors.clear()
        self.nsg_conflicts.reset()
        self.vm_conflicts.reset()
        self._operation_ids.seed(f"wac_azure.testing:operations:{self.random_seed}")
        self._request_ids.seed(f"wac_azure.testing:requests:{self.random_seed}")
        clear = getattr(self.faults, "clear", None)
        if callable(clear):
            clear()
        reset = getattr(self.throttle, "reset", None)
        if callable(reset):
            reset()

    def guest(self, target: VmTarget | str) -> GuestModel:
        """The mutable guest model of a VM."""
        self.settle()
        vm = self._vm_doc(target)
        return self.runtime(vm["id"]).guest

    def vm_runtime(self, target: VmTarget | str) -> VmRuntime:
        """Power state, agent and OS as reported, guest: the VM's runtime record."""
        return self.runtime(self._vm_doc(target)["id"])

    def set_power_state(
        self,
        target: VmTarget | str,
        state: str,
        *,
        started_at: dt.datetime | None = None,
    ) -> None:
        """Set a VM's power state (``running``, ``deallocated``, ``stopped``...)."""
        rt = self.vm_runtime(target)
        rt.power_state = state
        if state == "running":
            rt.started_at = started_at or _utcnow()
        else:
            rt.started_at = started_at

    def add_rule(self, nsg_id: str, rule_json: dict[str, Any]) -> dict[str, Any]:
        """Add a pre-existing security rule (wire JSON with ``name`` and ``properties``)."""
        nsg = self.store.get(nsg_id)
        if nsg is None:
            raise LookupError(f"the emulator has no NSG {nsg_id!r}")
        name = str(rule_json.get("name") or "")
        if not name:
            raise ValueError("rule_json needs a 'name'")
        props = normalise_rule_props(dict(rule_json.get("properties") or {}))
        props.setdefault("provisioningState", "Succeeded")
        rule = {
            "name": name,
            "id": f"{nsg['id']}/securityRules/{name}",
            "etag": new_etag(),
            "type": "Microsoft.Network/networkSecurityGroups/securityRules",
            "properties": props,
        }
        rules = [
            r
            for r in nsg["properties"].setdefault("securityRules", [])
            if str(r.get("name", "")).lower() != name.lower()
        ]
        rules.append(rule)
        nsg["properties"]["securityRules"] = rules
        nsg["etag"] = new_etag()
        return clone(rule)  # type: ignore[no-any-return]

    def _vm_doc(self, target: VmTarget | str) -> dict[str, Any]:
        rid = target if isinstance(target, str) else target.resource_id
        doc = self.store.get(rid)
        if doc is None:
            raise LookupError(f"the emulator has no VM {rid!r}")
        return doc

    # -- fronts -----------------------------------------------------------------------

    def transport(self, *, base_url: str = IN_PROCESS_BASE_URL) -> Any:
        """A fresh in-process azure-core ``AsyncHttpTransport`` over this emulator.

        ``base_url`` is where links in answers (``nextLink``, operation URLs) point.
        """
        return EmulatorTransport(self, base_url=base_url)

    def credential(self) -> Any:
        """An async ``TokenCredential`` giving this emulator's valid token."""
        return StaticTokenCredential(self.token)

    def session(self, *, credential: Any = None, **session_kwargs: Any) -> AzureSession:
        """An :class:`~wac_azure.AzureSession` over the in-process transport (no sockets).

        ``credential`` is the async ``TokenCredential`` the session signs in with: by
        default the emulator's own (:meth:`credential`); pass yours to see what the library
        does with it (one that raises azure-core's ``ClientAuthenticationError``, as
        ``DefaultAzureCredential`` does when nobody signed in, gives
        :class:`~wac_azure.AuthenticationError`; one whose token is not the emulator's is
        answered 401 ``AuthenticationFailed``, as ARM answers a bad token).

        With timed operations (``lro_seconds``/``extension_seconds``) the transport sleeps
        for real, so ``polling_interval`` defaults to 0.05 s (azure-core's 30 s fallback
        would otherwise follow every ``Retry-After: 0``); pass it to choose another.
        """
        kwargs: dict[str, Any] = {"base_url": IN_PROCESS_BASE_URL}
        if not self.virtual_time:
            kwargs["polling_interval"] = 0.05
        kwargs.update(session_kwargs)
        kwargs.setdefault("transport", self.transport(base_url=str(kwargs["base_url"])))
        return AzureSession(credential if credential is not None else self.credential(), **kwargs)

    def serve(self, **kwargs: Any) -> contextlib.AbstractAsyncContextManager[Any]:
        """Serve this emulator over HTTPS on loopback (see ``fronts.server.serve``)."""
        return serve_https(self, **kwargs)

    def __repr__(self) -> str:
        return (
            f"ArmEmulator(resources={sum(1 for _ in self.store)}, vms={len(self.vms)}, "
            f"requests={len(self.requests)})"
        )


def _loc(location: str) -> str:
    return location.replace(" ", "").lower()


def _base_url(req: EmuRequest) -> str:
    if req.base_url:
        return req.link_base()
    parts = urllib.parse.urlsplit(req.url)
    if parts.scheme and parts.netloc:
        return f"{parts.scheme}://{parts.netloc}"
    return IN_PROCESS_BASE_URL
