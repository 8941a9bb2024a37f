"""Every complete error body of the shared errors.json, met on the wire end to end.

``test_error_bodies`` checks how the library classifies each body from an
``HttpResponseError`` built in the test. Here the same bodies come from the ARM
emulator, verbatim (``Fault.recorded`` for an error answer, ``Fault.operation_result``
for the end of a long-running operation), and the library meets them through the real
SDK clients (``emu.session()``) in the public operation each body belongs to: a
security-rule write (``NetworkRulePlanner.apply``), an extension install
(``ExtensionManager.install``), the guest port read (a Run Command, ``locate_port``) or
a VM read (``read_vm_facts``). Each fault is scripted once, so

* ``RETRY``: the library sends the request again and the operation succeeds;
* ``BUSY``: azure-core retries the 429, the operation succeeds and the pacer counts it
  as ``busy``, not ``throttled``;
* ``THROTTLE``: azure-core retries the 429 and the operation succeeds (the pacer counts
  it as throttling);
* reported bodies raise the typed error the table names, carrying Azure's own message,
  chained to azure-core's error;
* ``EXTENSION``: ``ExtensionInstallError`` with Azure's message, the extension left on
  the VM ``Failed``.

Bodies that cannot be delivered end to end are listed in :data:`NOT_END_TO_END` (they
stay covered by ``test_error_bodies``).
"""

from __future__ import annotations

import enum
import re
from typing import Any

import attrs
import pytest
from azure.core.exceptions import HttpResponseError

from wac_azure import (
    AuthorizationError,
    AzureRequestError,
    AzureSession,
    ExtensionInstallError,
    ExtensionManager,
    NetworkRulePlanner,
    OperationFailedError,
    RetryConfig,
    VmTarget,
    read_vm_facts,
)
from wac_azure._azure.errors import error_chain
from wac_azure.testing import ArmEmulator, Fault

from .test_error_bodies import BUSY, ENTRIES, ERRORS, EXPECTED, EXTENSION, RETRY, THROTTLE
from tests.core.nsg._helpers import rule

pytestmark = pytest.mark.skipif(not ERRORS.exists(), reason="shared fixtures not mounted")

#: Retries in (virtual) milliseconds: the module runs in a few seconds.
FAST_RETRY = RetryConfig(attempts=4, initial=0.01, maximum=0.05, jitter=0.0, deadline=120)


class Op(enum.Enum):
    """The public operation a body is met in, and the request the fault answers."""

    #: ``NetworkRulePlanner(session).apply(plan)``: PUT .../securityRules/PortForWAC
    RULE_WRITE = ("PUT", r"/securityRules/")
    #: ``ExtensionManager(session).install(target)``: PUT .../extensions/AdminCenter
    EXTENSION_INSTALL = ("PUT", r"/extensions/AdminCenter$")
    #: ``ExtensionManager(session).locate_port(target)``: POST .../runCommand
    RUN_COMMAND = ("POST", r"/runCommand$")
    #: ``read_vm_facts(session, target)``: GET .../virtualMachines/vm1
    VM_READ = ("GET", r"/virtualMachines/vm1$")
    #: ``read_vm_facts(session, target)``: GET .../virtualNetworks/{vnet} (with its subnets)
    VNET_READ = ("GET", r"/virtualNetworks/[^/]+$")

    @property
    def method(self) -> str:
        return self.value[0]

    @property
    def path_regex(self) -> str:
        return self.value[1]


#: id -> the operation the body belongs to (or the library's nearest one: it writes no
#: subnets, VNets, NSGs, load balancers or scale sets, and runs no other VM action).
OPERATION: dict[str, Op] = {
    # Network: another write holds the resource / our write was superseded
    "net-429-retryable-anotherop-putsubnet": Op.RULE_WRITE,
    "net-retryable-referencednotprovisioned-putsubnet-json": Op.RULE_WRITE,
    "net-lro-canceled-superseded-putsecurityrule": Op.RULE_WRITE,
    "net-lro-canceled-superseded-putvnet-by-putsubnet": Op.RULE_WRITE,
    "deploy-nested-canceled-superseded-putnsg": Op.RULE_WRITE,
    "net-409-anotheroperationinprogress-subnet": Op.RULE_WRITE,
    "net-async-failed-anotheroperationinprogress": Op.RULE_WRITE,
    # Network: refused writes (linked scopes)
    "net-403-linkedauthorizationfailed-subnet-join": Op.RULE_WRITE,
    "net-linkedauthorizationfailed-tenant-not-authorized": Op.RULE_WRITE,
    "deploy-linkedauthorizationfailed-subnet-join-no-wrapper": Op.RULE_WRITE,
    # Compute writes on the VM ("Update VM"): the extension install
    "compute-412-preconditionfailed-vmss": Op.EXTENSION_INSTALL,
    "compute-409-conflict-concurrent-request": Op.EXTENSION_INSTALL,
    "deploy-operationnotallowed-update-vm-marked-for-deletion": Op.EXTENSION_INSTALL,
    "compute-lro-canceled-operationpreempted": Op.EXTENSION_INSTALL,
    "compute-ext-put-async-failed-provisioningerror": Op.EXTENSION_INSTALL,
    "compute-ext-provisioningerror-status-only": Op.EXTENSION_INSTALL,
    "compute-ext-provisioningtimeout": Op.EXTENSION_INSTALL,
    "compute-ext-provisioningtimeout-2018": Op.EXTENSION_INSTALL,
    "compute-ext-handler-nontransient-2016": Op.EXTENSION_INSTALL,
    "compute-ext-handler-nontransient-msi-1009": Op.EXTENSION_INSTALL,
    "arm-403-linkedauthorizationfailed-keyvault-2015": Op.EXTENSION_INSTALL,
    "compute-409-operationnotallowed-vm-not-running": Op.EXTENSION_INSTALL,
    # Compute actions on the VM: the guest port read's Run Command
    "compute-409-runcommand-in-progress": Op.RUN_COMMAND,
    "compute-409-runcommand-vm-not-running": Op.RUN_COMMAND,
    "arm-403-authorizationfailed-assesspatches": Op.RUN_COMMAND,
    # reads
    "arm-429-subscriptionrequeststhrottled-read": Op.VM_READ,
    "arm-429-subscriptionrequeststhrottled-backend-storage": Op.VM_READ,
    "compute-429-throttle-docs-example": Op.VM_READ,
    "net-403-authorizationfailed-subnet-read": Op.VNET_READ,
}

#: id -> why the body is not met end to end (``test_error_bodies`` still covers it).
NOT_END_TO_END: dict[str, str] = {
    "compute-ext-provisioningerror-in-deployment-conflict": (
        "a deployment's error document ({code: DeploymentFailed, details: [...]}) with no "
        "operation 'status': no ARM operation answers it on its own, and "
        "Fault.operation_result refuses a body without a terminal status"
    ),
}

#: Operation failures of an extension install that the library answers from the settled
#: instance view (``ExtensionManager._put`` lets ``VMExtensionProvisioningError`` pass and
#: ``_final`` raises): the table's ``OperationFailedError`` is what ``lro_failure`` makes
#: of the poll; what ``install`` raises is ``ExtensionInstallError``, the extension kept
#: ``Failed`` as Azure keeps it.
SETTLED_BY_INSTANCE_VIEW = frozenset(
    {
        "compute-ext-put-async-failed-provisioningerror",
        "compute-ext-provisioningerror-status-only",
    }
)

E2E = sorted(OPERATION)


def test_every_body_is_end_to_end_or_listed() -> None:
    assert set(OPERATION) | set(NOT_END_TO_END) == set(EXPECTED)
    assert not set(OPERATION) & set(NOT_END_TO_END)
    assert set(OPERATION) >= SETTLED_BY_INSTANCE_VIEW


# -- helpers ----------------------------------------------------------------------------


def _said(body: dict[str, Any]) -> list[str]:
    """Azure's own messages in ``body`` (the error and its details), without the blanks
    around them (an instance-view message is reported stripped)."""
    error = body.get("error", body)
    return [m.strip() for _, m in error_chain(error) if m.strip()]


def _azure_cause(exc: BaseException) -> HttpResponseError | None:
    """azure-core's error in ``exc``'s ``__cause__`` chain."""
    seen: BaseException | None = exc.__cause__
    while seen is not None:
        if isinstance(seen, HttpResponseError):
            return seen
        seen = seen.__cause__
    return None


def _fault(entry_id: str, op: Op) -> Fault:
    entry = ENTRIES[entry_id]
    status, expected = EXPECTED[entry_id]
    if status != 200:
        return Fault.recorded(status, entry["body"], entry["headers"])
    fault = Fault.operation_result(entry["body"])
    if op is Op.EXTENSION_INSTALL and (
        expected == EXTENSION or entry_id in SETTLED_BY_INSTANCE_VIEW
    ):
        # An extension whose handler failed stays on the VM, Failed (as on Azure).
        fault = attrs.evolve(fault, keep=True)
    return fault


def _nsg_id(t: VmTarget) -> str:
    return (
        f"/subscriptions/{t.subscription_id}/resourceGroups/{t.resource_group}"
        f"/providers/Microsoft.Network/networkSecurityGroups/{t.name}-nsg"
    )


def _answers(emu: ArmEmulator, op: Op, since: int) -> list[int]:
    """The statuses of the requests the fault could answer, in order."""
    path = re.compile(op.path_regex, re.IGNORECASE)
    return [
        r.status
        for r in emu.requests[since:]
        if r.method == op.method and path.search(r.path) is not None
    ]


async def _setup(emu: ArmEmulator, session: AzureSession, op: Op) -> VmTarget:
    t = emu.add_windows_vm("vm1", nsg="nic")
    if op is Op.RULE_WRITE:
        # a Deny on 6516 ahead of everything: the planner must write its Allow
        emu.add_rule(_nsg_id(t), rule("Deny6516", 200, access="Deny", protocol="*", dport="6516"))
    elif op is Op.RUN_COMMAND:
        assert (await ExtensionManager(session).install(t)).succeeded
    return t


async def _run(session: AzureSession, op: Op, t: VmTarget) -> None:
    """The public operation; returns when it succeeded (raises otherwise)."""
    if op is Op.RULE_WRITE:
        planner = NetworkRulePlanner(session)
        result = await planner.apply(await planner.plan(t, entra=False))
        assert [c.rule_name for c in result.created] == ["PortForWAC"]
    elif op is Op.EXTENSION_INSTALL:
        state = await ExtensionManager(session).install(t)
        assert state.succeeded
    elif op is Op.RUN_COMMAND:
        info = await ExtensionManager(session).locate_port(t)
        assert info.port == 6516
    else:
        facts = await read_vm_facts(session, t)
        assert facts.vm_resource_id.lower() == t.resource_id.lower()


# -- the bodies, on the wire ------------------------------------------------------------


@pytest.mark.parametrize("entry_id", E2E)
async def test_body_met_on_the_wire(entry_id: str) -> None:
    entry = ENTRIES[entry_id]
    status, expected = EXPECTED[entry_id]
    op = OPERATION[entry_id]
    said = _said(entry["body"])
    assert said
    emu = ArmEmulator(seed=0)
    async with emu.session(retry=FAST_RETRY) as session:
        t = await _setup(emu, session, op)
        since = len(emu.requests)
        emu.faults.add_scripted(1, _fault(entry_id, op), method=op.method, path_regex=op.path_regex)
        throttled, busy = session.pacer.throttled, session.pacer.busy

        if expected in (RETRY, BUSY, THROTTLE):
            await _run(session, op, t)
            answers = _answers(emu, op, since)
            assert emu.faults.total == 1, emu.faults.injected
            assert len(answers) == 2, answers  # the faulted request, then one that worked
            if status != 200:
                assert answers[0] == status
            if expected == RETRY:
                assert session.pacer.throttled == throttled
            elif expected == BUSY:
                assert session.pacer.throttled == throttled  # not throttling...
                assert session.pacer.busy == busy + 1  # ...but "resource busy"
            else:
                assert session.pacer.throttled == throttled + 1
                assert session.pacer.busy == busy
            if op is Op.RULE_WRITE:
                rules = emu.resource(_nsg_id(t))["properties"]["securityRules"]
                assert "PortForWAC" in {r["name"] for r in rules}
            assert emu.internal_errors == []
            return

        if expected == EXTENSION or entry_id in SETTLED_BY_INSTANCE_VIEW:
            with pytest.raises(ExtensionInstallError) as caught:
                await _run(session, op, t)
            err: BaseException = caught.value
            # the handler's words (the detail under ResourceDeploymentFailure, when there)
            assert all(m in str(err) for m in said[1:] or said), str(err)
            ext = emu.resource(f"{t.resource_id}/extensions/AdminCenter")
            assert ext["properties"]["provisioningState"] == "Failed"
            assert _answers(emu, op, since) == [201]  # not sent again
            if expected == EXTENSION:
                # chained to the operation's failure, down to azure-core's error
                assert isinstance(err.__cause__, OperationFailedError)
                assert _azure_cause(err) is not None
            assert emu.internal_errors == []
            return

        cls, detail = expected
        with pytest.raises(cls) as reported:
            await _run(session, op, t)
        failure: Any = reported.value
        assert all(m in str(failure) for m in said), str(failure)
        cause = _azure_cause(failure)
        assert cause is not None, f"{type(failure).__name__} is not chained to azure-core's error"
        if status != 200:
            assert cause.status_code == status
        answers = _answers(emu, op, since)
        assert answers[:1] == [201 if status == 200 else status]
        assert len(answers) == 1, answers  # reported, not retried
        if cls is AuthorizationError:
            assert isinstance(failure, AuthorizationError)
            assert failure.action == detail
            if detail is not None:
                assert failure.role
        elif cls is OperationFailedError:
            assert isinstance(failure, OperationFailedError)
            assert failure.code == detail
        else:
            assert type(failure) is AzureRequestError
            assert failure.code == detail
        assert session.pacer.throttled == throttled
        assert emu.internal_errors == []


@pytest.mark.parametrize("entry_id", sorted(SETTLED_BY_INSTANCE_VIEW))
async def test_instance_view_failure_is_chained_to_the_operation_error(entry_id: str) -> None:
    """An install whose operation ended VMExtensionProvisioningError raises the instance
    view's ExtensionInstallError chained to Azure's operation error, so it is never lost."""
    op = OPERATION[entry_id]
    emu = ArmEmulator(seed=0)
    async with emu.session(retry=FAST_RETRY) as session:
        t = await _setup(emu, session, op)
        emu.faults.add_scripted(1, _fault(entry_id, op), method=op.method, path_regex=op.path_regex)
        with pytest.raises(ExtensionInstallError) as caught:
            await _run(session, op, t)
    assert _azure_cause(caught.value) is not None
