"""Seeded, reproducible fault injection for the ARM emulator.

A :class:`FaultInjector` holds rules; the emulator asks it, for every request
that passed authentication, whether to answer with a fault::

    emu.faults.add_random(0.2)                                 # 20 % of requests, any preset
    emu.faults.add_random(0.1, kinds=["429", "reset"], methods=["PUT"])
    emu.faults.add_scripted(2, "409", method="PUT", path_regex=r"/securityRules/")

Reproducibility: a random rule decides from a hash of ``(seed, rule, method,
path, how many times this rule has seen that method and path)`` — not from a
shared random stream — so the same seed and the same requests give the same
faults even when concurrent requests to *different* resources interleave
differently from run to run. Scripted rules count the requests they match, in
arrival order. Faults that only make sense on writes (409 "another operation
is in progress", an operation ending ``Failed`` or ``Canceled``) never hit reads.
``Fault.recorded`` answers with a verbatim Azure error (errors.json bodies) and
``Fault.operation_result`` ends the operation with a verbatim status body.

Operation-status polls (the ``Azure-AsyncOperation`` / ``Location`` URLs a
client polls) can be faulted too, as in Azure; ``include_polls=False`` keeps
every rule off them.
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from wac_azure.testing.backend.wire import EmuRequest, EmuResponse

__all__ = [
    "PRESETS",
    "TRANSIENT_PRESETS",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "InjectedFault",
    "is_operation_poll",
    "writes_only",
]


class FaultKind(str, enum.Enum):
    """How a fault shows itself."""

    #: an HTTP error answer (``status``, ``code``, ``message``, maybe ``Retry-After``)
    STATUS = "status"
    #: the connection drops without an answer (transport error in-process)
    RESET = "reset"
    #: the request is accepted but its long-running operation ends ``Failed``
    #: with ``code``/``message`` (for requests that start one; others ignore it)
    LRO_FAILED = "lro_failed"
    #: the answer is normal but comes ``delay`` seconds late
    SLOW = "slow"
    #: a verbatim HTTP answer (``status``, ``body``, ``headers``), e.g. from errors.json
    RECORDED = "recorded"
    #: the request is accepted, then its long-running operation ends with the verbatim
    #: operation-status ``body`` (``{"status": "Canceled", "error": {...}}``)
    OPERATION_RESULT = "operation_result"

    def __str__(self) -> str:
        return self.value


def _error_code(body: str) -> str:
    try:
        doc = json.loads(body) if body else None
    except ValueError:
        return ""
    if not isinstance(doc, dict):
        return ""
    err = doc.get("error") if isinstance(doc.get("error"), dict) else doc
    code = err.get("code") if isinstance(err, dict) else None
    return str(code) if code else ""


def _default_name(fault: Fault) -> str:
    if fault.kind is FaultKind.STATUS:
        return str(fault.status)
    if fault.kind is FaultKind.LRO_FAILED:
        return fault.code or "lro_failed"
    if fault.kind is FaultKind.RECORDED:
        return _error_code(fault.body) or str(fault.status)
    if fault.kind is FaultKind.OPERATION_RESULT:
        return _error_code(fault.body) or "operation_result"
    return str(fault.kind.value)


def _body_text(body: Any) -> str:
    if isinstance(body, bytes):
        return body.decode()
    if isinstance(body, str):
        return body
    return json.dumps(body)


def _header_pairs(headers: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for key, value in (headers or {}).items():
        # a header recorded on several lines (errors.json keeps them as a list) is joined
        text = ",".join(str(v) for v in value) if isinstance(value, list) else str(value)
        out.append((str(key), text))
    return tuple(out)


@attrs.frozen
class Fault:
    """One fault. Build them with the class methods (``Fault.throttled()``...).

    ``name`` labels the fault in :attr:`FaultInjector.counts` (``"429"``,
    ``"reset"``, ``"OperationPreempted"``, ``"slow"``...).
    """

    kind: FaultKind = attrs.field(converter=FaultKind)
    status: int = 0
    code: str = ""
    message: str = ""
    delay: float = 0.0
    retry_after: float | None = None
    #: a ``recorded`` / ``operation_result`` fault's verbatim body (JSON text)
    body: str = ""
    #: a ``recorded`` fault's verbatim headers
    headers: tuple[tuple[str, str], ...] = ()
    #: an ``operation_result`` fault that fails keeps the resource (marked ``Failed``)
    #: instead of undoing the write
    keep: bool = False
    #: only requests whose path matches this regex (case-insensitive) can get the fault
    only_path: str = ""
    #: only these methods can get the fault (empty: any)
    only_methods: tuple[str, ...] = ()
    name: str = attrs.field()

    @name.default
    def _name(self) -> str:
        return _default_name(self)

    # -- presets ------------------------------------------------------------------

    @classmethod
    def throttled(cls, retry_after: float = 1) -> Fault:
        """429 ``SubscriptionRequestsThrottled`` with ``Retry-After`` (azure-core retries it).

        ARM's throttling code (errors.json ``arm-429-subscriptionrequeststhrottled-read``).
        """
        return cls(
            FaultKind.STATUS,
            status=429,
            code="SubscriptionRequestsThrottled",
            message="Number of 'read' requests for subscription exceeded. Please try again "
            f"after '{int(retry_after)}' seconds after additional tokens are available. "
            "Refer to https://aka.ms/arm-throttling for additional information. "
            "(injected fault)",
            retry_after=retry_after,
        )

    @classmethod
    def recorded(
        cls,
        status: int,
        body: Any,
        headers: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
    ) -> Fault:
        """Answer with a verbatim error: ``status``, ``body`` (JSON value or text), ``headers``.

        For bodies recorded from real Azure (``errors.json`` entries:
        ``Fault.recorded(e["status"], e["body"], e["headers"])``). Header values given as
        lists (a header sent on several lines) are joined with commas. ``name`` defaults to
        the body's error code.
        """
        if not 100 <= int(status) <= 599:
            raise ValueError(f"status must be an HTTP status code; got {status!r}")
        fault = cls(
            FaultKind.RECORDED,
            status=int(status),
            body=_body_text(body),
            headers=_header_pairs(headers),
        )
        return fault if name is None else attrs.evolve(fault, name=name)

    @classmethod
    def operation_result(cls, body: Any, *, name: str | None = None) -> Fault:
        """Accept the write, then end its operation with the verbatim status ``body``.

        ``body`` is an operation-status document such as errors.json's
        ``{"status": "Canceled", "error": {"code": "Canceled", ...}}``; polls answer it as
        given, the resource goes back to what it was (the write does not stick) unless the
        status is ``Succeeded``. Only writes that start an operation are faulted.
        """
        text = _body_text(body)
        doc = json.loads(text)
        if not isinstance(doc, dict) or doc.get("status") not in (
            "Succeeded",
            "Failed",
            "Canceled",
        ):
            raise ValueError(
                "an operation result needs a terminal 'status' (Succeeded, Failed or Canceled)"
            )
        fault = cls(FaultKind.OPERATION_RESULT, body=text)
        return fault if name is None else attrs.evolve(fault, name=name)

    def body_json(self) -> Any:
        """The verbatim body parsed as JSON (``None`` when there is none)."""
        return json.loads(self.body) if self.body else None

    @classmethod
    def retryable_another_operation(cls, operation: str = "PutSecurityRuleOperation") -> Fault:
        """Network's 429 ``RetryableError`` / ``RetryableErrorDueToAnotherOperation``, on writes.

        Body shape of errors.json ``net-429-retryable-anotherop-putsubnet``.
        """
        body = {
            "error": {
                "code": "RetryableError",
                "message": "A retryable error occurred.",
                "details": [
                    {
                        "code": "RetryableErrorDueToAnotherOperation",
                        "message": f"Operation {operation} (00000000-0000-0000-0000-000000000000)"
                        " is updating resource (injected fault). The call can be retried in 10 "
                        "seconds.",
                    }
                ],
            }
        }
        return cls.recorded(429, body, {"Retry-After": "10"}, name="429-anotheroperation")

    @classmethod
    def compute_throttled(cls, retry_after: float = 60) -> Fault:
        """Compute's 429 ``OperationNotAllowed`` / ``TooManyRequests`` (errors.json shape)."""
        body = {
            "error": {
                "code": "OperationNotAllowed",
                "message": "The server rejected the request because too many requests have "
                "been received for this subscription.",
                "details": [
                    {
                        "code": "TooManyRequests",
                        "target": "LowCostGet3Min",
                        "message": json.dumps(
                            {
                                "operationGroup": "LowCostGet3Min",
                                "startTime": "2026-01-01T00:00:00+00:00",
                                "endTime": "2026-01-01T00:03:00+00:00",
                                "allowedRequestCount": 36,
                                "measuredRequestCount": 37,
                            },
                            separators=(",", ":"),
                        ),
                    }
                ],
                "innerError": {"internalErrorCode": "TooManyRequestsReceived"},
            }
        }
        return cls.recorded(429, body, {"Retry-After": str(int(retry_after))}, name="compute-429")

    @classmethod
    def internal_error(cls) -> Fault:
        """500 ``InternalServerError`` (azure-core retries it)."""
        return cls(
            FaultKind.STATUS,
            status=500,
            code="InternalServerError",
            message="Encountered internal server error (injected fault).",
        )

    @classmethod
    def unavailable(cls, retry_after: float | None = None) -> Fault:
        """503 ``ServiceUnavailable`` (azure-core retries it)."""
        return cls(
            FaultKind.STATUS,
            status=503,
            code="ServiceUnavailable",
            message="The service is temporarily unavailable (injected fault).",
            retry_after=retry_after,
        )

    @classmethod
    def conflict_in_progress(cls) -> Fault:
        """409 ``AnotherOperationInProgress``, on writes (azure-core never retries 409).

        Network's real 409 pair (errors.json ``net-409-anotheroperationinprogress-subnet``);
        ``RetryableErrorDueToAnotherOperation`` comes with 429: see
        :meth:`retryable_another_operation`.
        """
        return cls(
            FaultKind.STATUS,
            status=409,
            code="AnotherOperationInProgress",
            message="Another operation on this or dependent resource is in progress. "
            "(injected fault)",
            name="409",
        )

    @classmethod
    def extension_failed(
        cls, code: str = "VMExtensionProvisioningTimeout", message: str | None = None
    ) -> Fault:
        """An extension PUT is accepted, then its operation ends ``Failed`` with ``code``.

        ``VMExtensionProvisioningTimeout`` or ``VMExtensionHandlerNonTransientError`` (or any
        code), in the shape of errors.json ``compute-ext-provisioningtimeout`` /
        ``compute-ext-handler-nontransient-msi-1009``. The extension stays on the VM with
        ``provisioningState: Failed`` (it does not disappear). ``{extension}`` and
        ``{handler}`` in ``message`` become the extension's name and ``publisher.type``.
        Only extension PUT/PATCH requests get it.
        """
        if message is None:
            message = {
                "VMExtensionProvisioningTimeout": "Provisioning of VM extension {extension} "
                "has timed out. Extension provisioning has taken too long to complete. The "
                'extension last reported "Plugin enabled".',
                "VMExtensionHandlerNonTransientError": "Handler '{handler}' has reported "
                "failure for VM Extension '{extension}' with terminal error code '1009' and "
                "error message: 'Enable failed for plugin (name: {handler}) with exception "
                "(injected fault)'",
            }.get(code, "VM has reported a failure when processing extension '{extension}'.")
        body = {
            "status": "Failed",
            "error": {
                "code": "ResourceDeploymentFailure",
                "message": "The resource operation completed with terminal provisioning state "
                "'Failed'.",
                "details": [{"code": code, "message": message}],
            },
        }
        return attrs.evolve(
            cls.operation_result(body, name=code),
            keep=True,
            only_path=r"/virtualMachines/[^/]+/extensions/[^/]+/?$",
            only_methods=("PUT", "PATCH"),
        )

    @classmethod
    def operation_preempted(cls) -> Fault:
        """The operation is accepted, then ends ``Canceled`` / ``OperationPreempted``.

        Verbatim errors.json ``compute-lro-canceled-operationpreempted``.
        """
        return cls.operation_result(
            {
                "status": "Canceled",
                "error": {
                    "code": "OperationPreempted",
                    "message": "The operation has been preempted by a more recent operation.",
                },
            },
            name="OperationPreempted",
        )

    @classmethod
    def reset(cls) -> Fault:
        """The connection is dropped (HTTPS front) / a transport error (in-process)."""
        return cls(FaultKind.RESET)

    @classmethod
    def lro_failed(cls, code: str = "OperationPreempted", message: str | None = None) -> Fault:
        """The operation is accepted, then ends ``Failed`` with a transient ``code``."""
        if message is None:
            message = {
                "OperationPreempted": "Operation execution has been preempted by a more "
                "recent operation.",
                "InternalExecutionError": "An internal execution error occurred. "
                "Please retry later.",
            }.get(code, f"The operation failed with {code}.")
        return cls(FaultKind.LRO_FAILED, code=code, message=message)

    @classmethod
    def slow(cls, delay: float = 0.25) -> Fault:
        """A normal answer, ``delay`` seconds late."""
        if delay < 0:
            raise ValueError(f"a slow fault needs delay >= 0 seconds; got {delay!r}")
        return cls(FaultKind.SLOW, delay=float(delay))

    # -- applying -----------------------------------------------------------------

    def to_response(self, headers: Mapping[str, str] | None = None) -> EmuResponse:
        """The ARM error answer of a ``status`` or ``recorded`` fault.

        ``headers`` (the rate-limit headers...) come first; a recorded fault's own headers
        win over them.
        """
        if self.kind is FaultKind.RECORDED:
            hdrs = {"Content-Type": "application/json; charset=utf-8", **dict(headers or {})}
            for key, value in self.headers:
                for existing in [k for k in hdrs if k.lower() == key.lower()]:
                    del hdrs[existing]
                hdrs[key] = value
            hdrs = {k: v for k, v in hdrs.items() if k.lower() != "content-length"}
            return EmuResponse(self.status, hdrs, self.body.encode())
        if self.kind is not FaultKind.STATUS:
            raise ValueError(f"a {self.kind.value} fault has no HTTP answer of its own")
        hdrs = dict(headers or {})
        if self.retry_after is not None:
            hdrs["Retry-After"] = str(int(self.retry_after))
        return EmuResponse.of_json(
            self.status, {"error": {"code": self.code, "message": self.message}}, hdrs
        )

    def operation_error(self) -> dict[str, str]:
        """The ``error`` object an ``lro_failed`` fault puts in the operation status."""
        return {"code": self.code, "message": self.message}


#: The faults ``add_random`` and ``add_scripted`` know by name.
PRESETS: Mapping[str, Fault] = {
    "429": Fault.throttled(),
    "500": Fault.internal_error(),
    "503": Fault.unavailable(),
    "409": Fault.conflict_in_progress(),
    "429-anotheroperation": Fault.retryable_another_operation(),
    "compute-429": Fault.compute_throttled(),
    "reset": Fault.reset(),
    "OperationPreempted": Fault.operation_preempted(),
    "VMExtensionProvisioningTimeout": Fault.extension_failed("VMExtensionProvisioningTimeout"),
    "VMExtensionHandlerNonTransientError": Fault.extension_failed(
        "VMExtensionHandlerNonTransientError"
    ),
    "InternalExecutionError": Fault.lro_failed("InternalExecutionError"),
    "slow": Fault.slow(),
}

#: The presets ``add_random`` picks from by default: the transient ones, which a correct
#: client recovers from. The extension's terminal failures (``VMExtension…``) end an
#: install for good, as on Azure: ask for them by name.
TRANSIENT_PRESETS: tuple[str, ...] = tuple(k for k in PRESETS if not k.startswith("VMExtension"))

_WRITE_METHODS = frozenset({"PUT", "PATCH", "POST", "DELETE"})

_POLL = re.compile(
    r"/(?:operations|operationresults|operationstatuses|asyncoperations|operationsstatus"
    r"|azureasyncoperations)/[^/]+/?$",
    re.IGNORECASE,
)


def _key_path(path: str) -> str:
    # Operation IDs are fresh per run: key polls by their status route, not their ID.
    return _POLL.sub(lambda m: m.group(0).rsplit("/", 1)[0] + "/*", path.lower().rstrip("/"))


def is_operation_poll(req: EmuRequest) -> bool:
    """Whether ``req`` polls a long-running operation's status resource."""
    return req.method.upper() == "GET" and _POLL.search(req.path) is not None


def _fault(value: str | Fault) -> Fault:
    if isinstance(value, Fault):
        return value
    try:
        return PRESETS[value]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown fault {value!r}; use a Fault or one of {', '.join(PRESETS)}"
        ) from None


def writes_only(fault: Fault) -> bool:
    """Whether ``fault`` only makes sense on a write (PUT, PATCH, POST, DELETE).

    An operation can only fail on a request that starts one, and ARM answers
    409 "another operation is in progress" to writes, never to reads.
    """
    if fault.kind in (FaultKind.LRO_FAILED, FaultKind.OPERATION_RESULT):
        return True
    if fault.name == "429-anotheroperation":
        return True
    return fault.kind in (FaultKind.STATUS, FaultKind.RECORDED) and fault.status == 409


def _applies(fault: Fault, req: EmuRequest) -> bool:
    if fault.only_methods and req.method.upper() not in fault.only_methods:
        return False
    if fault.only_path and re.search(fault.only_path, req.path, re.IGNORECASE) is None:
        return False
    return not writes_only(fault) or req.method.upper() in _WRITE_METHODS


@attrs.define
class _Matcher:
    methods: frozenset[str] | None
    path_regex: re.Pattern[str] | None

    def matches(self, req: EmuRequest) -> bool:
        if self.methods is not None and req.method.upper() not in self.methods:
            return False
        return self.path_regex is None or self.path_regex.search(req.path) is not None


def _matcher(methods: Iterable[str] | str | None, path_regex: str | None) -> _Matcher:
    if isinstance(methods, str):
        methods = [methods]
    return _Matcher(
        None if methods is None else frozenset(m.upper() for m in methods),
        None if path_regex is None else re.compile(path_regex, re.IGNORECASE),
    )


@attrs.define
class _RandomRule:
    probability: float
    faults: tuple[Fault, ...]
    matcher: _Matcher
    seen: dict[tuple[str, str], int] = attrs.field(factory=dict)


@attrs.define
class _ScriptedRule:
    nth: int
    fault: Fault
    matcher: _Matcher
    seen: int = 0


@attrs.frozen
class InjectedFault:
    """One fault the injector handed out: which request, which fault."""

    method: str
    path: str
    fault: Fault


class FaultInjector:
    """Seeded fault rules; :meth:`pick` decides per request.

    ``enabled=False`` turns every rule off (nothing is counted either).
    ``counts`` maps fault names (``"429"``, ``"reset"``, ``"OperationPreempted"``...)
    to how many were injected; ``injected`` lists them in order.
    """

    def __init__(self, seed: int = 0, *, include_polls: bool = True, enabled: bool = True) -> None:
        self.seed = seed
        self.include_polls = include_polls
        self.enabled = enabled
        self._random: list[_RandomRule] = []
        self._scripted: list[_ScriptedRule] = []
        self._lock = threading.Lock()
        self.counts: dict[str, int] = {}
        self.injected: list[InjectedFault] = []

    # -- rules --------------------------------------------------------------------

    def add_random(
        self,
        probability: float,
        kinds: Sequence[str | Fault] | str | Fault | None = None,
        *,
        methods: Iterable[str] | str | None = None,
        path_regex: str | None = None,
    ) -> None:
        """Fault each matching request with ``probability``, picking one of ``kinds``.

        ``kinds`` are preset names (see :data:`PRESETS`) or :class:`Fault`
        values (one or a list); by default every transient preset
        (:data:`TRANSIENT_PRESETS`: not the extension's terminal failures). ``methods`` and
        ``path_regex`` (searched in the URL path, case-insensitive) narrow the
        requests.
        """
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"probability must be between 0 and 1; got {probability!r}")
        if isinstance(kinds, (str, Fault)):
            kinds = [kinds]
        faults = tuple(_fault(k) for k in (TRANSIENT_PRESETS if kinds is None else kinds))
        if not faults:
            raise ValueError("kinds is empty: give at least one fault")
        with self._lock:
            self._random.append(
                _RandomRule(float(probability), faults, _matcher(methods, path_regex))
            )

    def add_scripted(
        self,
        nth: int,
        kind: str | Fault,
        *,
        method: str | None = None,
        path_regex: str | None = None,
    ) -> None:
        """Fault the ``nth`` (1-based) request matching ``method`` and ``path_regex``, once.

        For a write-only fault (409, a failing operation: see :func:`writes_only`)
        only writes are counted.
        """
        if isinstance(nth, bool) or not isinstance(nth, int) or nth < 1:
            raise ValueError(f"nth counts requests from 1; got {nth!r}")
        fault = _fault(kind)
        with self._lock:
            self._scripted.append(_ScriptedRule(nth, fault, _matcher(method, path_regex)))

    def clear(self) -> None:
        """Remove every rule and forget the counts."""
        with self._lock:
            self._random.clear()
            self._scripted.clear()
            self.counts.clear()
            self.injected.clear()

    @property
    def total(self) -> int:
        """How many faults were injected."""
        return sum(self.counts.values())

    # -- deciding -----------------------------------------------------------------

    def _draw(self, rule_index: int, key: tuple[str, str], n: int) -> tuple[float, int]:
        text = f"{self.seed}|{rule_index}|{key[0]}|{key[1]}|{n}".encode()
        digest = hashlib.blake2b(text, digest_size=16).digest()
        unit = int.from_bytes(digest[:8], "big") / 2.0**64
        return unit, int.from_bytes(digest[8:], "big")

    def pick(self, req: EmuRequest) -> Fault | None:
        """The fault for ``req``, or ``None``. Call it once per request.

        Call it only for requests that passed authentication (a request
        without an ``Authorization`` header is never faulted).
        """
        if not self.enabled or (not self._random and not self._scripted):
            return None
        if "authorization" not in req.headers:
            return None
        if not self.include_polls and is_operation_poll(req):
            return None
        method = req.method.upper()
        with self._lock:
            chosen: Fault | None = None
            for script in self._scripted:
                # A write-only fault's rule counts only the writes it matches.
                if not script.matcher.matches(req) or not _applies(script.fault, req):
                    continue
                script.seen += 1
                if chosen is None and script.seen == script.nth:
                    chosen = script.fault
            key = (method, _key_path(req.path))
            for index, rule in enumerate(self._random):
                if not rule.matcher.matches(req):
                    continue
                n = rule.seen.get(key, 0) + 1
                rule.seen[key] = n
                if chosen is not None:
                    continue
                unit, which = self._draw(index, key, n)
                if unit < rule.probability:
                    options = [f for f in rule.faults if _applies(f, req)]
                    if options:
                        chosen = options[which % len(options)]
            if chosen is not None:
                self.counts[chosen.name] = self.counts.get(chosen.name, 0) + 1
                self.injected.append(InjectedFault(method, req.path, chosen))
            return chosen

    def __repr__(self) -> str:
        return (
            f"FaultInjector(seed={self.seed}, random_rules={len(self._random)}, "
            f"scripted_rules={len(self._scripted)}, counts={self.counts})"
        )
