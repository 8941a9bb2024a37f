"""``wac_azure.testing``: an Azure Resource Manager emulator for Compute and Network.

The real ``azure-mgmt-*`` async clients talk the real ARM wire format to it, so
automation (the library's, or yours) can be tested without a subscription::

    from wac_azure.testing import ArmEmulator

    emu = ArmEmulator()
    target = emu.add_windows_vm("vm1", os="2022", size="Standard_D2s_v3", nsg="nic")
    async with emu.session() as session:          # an AzureSession, no sockets
        compute = session.compute(target.subscription_id)
        vm = await compute.virtual_machines.get(target.resource_group, "vm1",
                                                expand="instanceView")

* Builders: :meth:`ArmEmulator.add_windows_vm` makes a VM with NIC ``{vm}-nic``,
  NSG ``{vm}-nsg`` (``nsg="nic"``), a subnet NSG (``"subnet"``), both or none, VNet
  ``vnet-{location}`` (10.0.0.0/16, shared per resource group and location) with subnet
  ``default`` (VMs without a subnet NSG) or ``default-nsg`` (VMs with one, sharing NSG
  ``{vnet}-default-nsg``; with ``subnet=`` the NSG ``{vnet}-{subnet}-nsg`` covers that
  whole subnet), and a Standard public IP ``{vm}-ip`` when ``public_ip=True``.
  :meth:`~ArmEmulator.seed` stores any ARM JSON as GET returns it (fixtures, or the
  Azure CLI's flattened ``az vm show -o json`` / ``az network nic show`` output, turned
  back into the wire shape); :meth:`~ArmEmulator.resource` reads it back.
* Behaviour, not a key-value store: long-running operations (complete after
  ``lro_polls`` polls or ``lro_seconds`` emulated seconds), NSG rule validation and
  conflicts, overlapping writes answered as Azure does (an NSG: 429
  ``RetryableErrorDueToAnotherOperation``, supersede or 409, per ``nsg_conflicts``; a VM's
  extensions: 409 ``Conflict`` or ``OperationPreempted``, per ``vm_conflicts``; one Run
  Command at a time), extension installs that fail the
  way the real ``AdminCenter`` extension does (VM not running, OS older than Windows
  Server 2016, less than 3 GiB, outbound TCP 443 to ``WindowsAdminCenter`` blocked by
  the NSGs — judged by the emulator's own evaluator — or inside the guest).
* The guest: :meth:`~ArmEmulator.guest` gives a mutable :class:`GuestModel`
  (either gateway: the modernized one's appsettings.json by default, or the legacy
  ``SmePort`` with ``add_windows_vm(..., gateway="legacy")``; services, firewall
  rules, outbound block, Run Command busy). Run Command answers scripts whose first
  line is ``# wac-azure-guest-script: <name> v2`` (``port``, ``diagnose``) from it.
* Inspection: :attr:`~ArmEmulator.requests` records every request
  (:class:`RequestRecord`), :meth:`~ArmEmulator.writes` the writes;
  :meth:`~ArmEmulator.deny` makes an action answer 403 ``AuthorizationFailed``;
  ``emu.faults`` injects faults (presets, or verbatim Azure answers with
  :meth:`Fault.recorded` / :meth:`Fault.operation_result`) and ``emu.throttle`` applies
  ARM's token buckets and Compute's policies (:class:`ComputePolicy`).
* Fronts: :meth:`~ArmEmulator.session` (in-process azure-core transport, virtual
  sleeps) and :meth:`~ArmEmulator.serve` (HTTPS on loopback, a :class:`ServerHandle`);
  :func:`serve_in_thread` and :func:`run_server_forever` serve from a background thread
  or as a process's main loop. Both fronts share one state.
* Emulator bugs: an exception inside a route answers 500 ``InternalServerError``
  (``"emulator bug: <type>: <message>"``), is logged at ERROR and is kept in
  :attr:`ArmEmulator.internal_errors` (:class:`InternalError`) so tests can fail on it.

The modelled ``AdminCenter`` handler is build ``0.31.0.0`` (reported in the extension's
instance view whatever ``typeHandlerVersion`` was written), which also supports
Windows 10/11 clients: an install on ``os="windows-11"`` succeeds. Time: with
``lro_seconds=None`` (the default) operations count polls and the in-process
transport's sleeps are instant; with ``lro_seconds=T`` an operation takes ``T``
emulated seconds, that is ``T * time_scale`` real seconds. Like real ARM, operation
answers carry no ``Retry-After`` unless ``lro_retry_after=True`` (then in whole real
seconds: at least 1 in real time, 0 under a compressed clock); clients poll at their
``polling_interval``, which ``emu.session()`` defaults to 0.05 s when operations are
timed. docs/emulator.md lists every behaviour with its Azure source.
"""

from __future__ import annotations

from wac_azure.testing._emulator import (
    DEFAULT_RESOURCE_GROUP,
    DEFAULT_SUBSCRIPTION,
    ArmEmulator,
    InternalError,
    RequestRecord,
)
from wac_azure.testing.backend.faults import Fault, FaultInjector
from wac_azure.testing.backend.guest import FirewallRule, GuestModel
from wac_azure.testing.backend.runtime import VmRuntime
from wac_azure.testing.backend.throttle import ComputePolicy, Throttle, ThrottleConfig
from wac_azure.testing.fronts.server import ServerHandle, run_server_forever, serve_in_thread
from wac_azure.testing.fronts.transport import EmulatorTransport, StaticTokenCredential

__all__ = [
    "DEFAULT_RESOURCE_GROUP",
    "DEFAULT_SUBSCRIPTION",
    "ArmEmulator",
    "ComputePolicy",
    "EmulatorTransport",
    "Fault",
    "FaultInjector",
    "FirewallRule",
    "GuestModel",
    "InternalError",
    "RequestRecord",
    "ServerHandle",
    "StaticTokenCredential",
    "Throttle",
    "ThrottleConfig",
    "VmRuntime",
    "run_server_forever",
    "serve_in_thread",
]
