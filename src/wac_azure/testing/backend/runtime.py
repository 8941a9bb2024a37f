"""What ARM knows about a VM beyond its JSON: power, agent, OS as reported, the guest."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from wac_azure.testing.backend.builders import guess_os
from wac_azure.testing.backend.guest import GuestModel
from wac_azure.testing.backend.state import Store

__all__ = ["VmRuntime", "runtime_of"]


@attrs.define
class VmRuntime:
    """What ARM knows about a VM beyond its JSON: power, agent, OS as reported, the guest."""

    power_state: str = "running"
    started_at: dt.datetime | None = None
    os_name: str | None = None
    os_version: str | None = None
    agent_version: str | None = "2.7.41491.1141"
    guest: GuestModel = attrs.field(factory=GuestModel)
    run_command_op: str | None = None
    instance_view: dict[str, Any] | None = None  # seeded instance view, if any


def runtime_of(vms: dict[str, VmRuntime], store: Store, vm_id: str) -> VmRuntime:
    """The runtime record of ``vm_id`` in ``vms`` (keyed by lower-cased ID), made on first use.

    A new record is a VM running for a day, reporting the OS its image reference names.
    """
    key = vm_id.lower()
    rt = vms.get(key)
    if rt is None:
        rt = VmRuntime(started_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1))
        doc = store.get(vm_id)
        if doc is not None:
            spec = guess_os(doc)
            if spec is not None:
                rt.os_name, rt.os_version = spec.os_name, spec.os_version
        vms[key] = rt
    return rt
