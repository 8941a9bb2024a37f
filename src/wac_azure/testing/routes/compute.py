"""Routes: Microsoft.Compute (VMs, instance views, extensions, sizes, Run Command)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from wac_azure.testing.backend import netpath
from wac_azure.testing.backend.builders import (
    guess_os,
    vm_memory_mib,
    vm_sizes_document,
    vm_skus_document,
)
from wac_azure.testing.backend.guest import run_script
from wac_azure.testing.backend.operations import Outcome
from wac_azure.testing.backend.runtime import VmRuntime
from wac_azure.testing.backend.state import ArmError, clone, not_found
from wac_azure.testing.backend.wire import EmuRequest, EmuResponse
from wac_azure.testing.routes.common import expand, json_body, ok, page, prov_id
from wac_azure.testing.routes.context import RouteContext
from wac_azure.testing.routes.router import Router

__all__ = ["ROUTES", "extension_outcome", "vm_instance_view"]

ROUTES = Router()
_VMS = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines"
_VM = _VMS + "/{vm}"
_VM_TYPE = "Microsoft.Compute/virtualMachines"
_EXT_TYPE = "Microsoft.Compute/virtualMachines/extensions"
_RC_TYPE = "Microsoft.Compute/virtualMachines/runCommands"

#: The AdminCenter handler build the emulator reports (supports Windows 10/11 clients).
ADMIN_CENTER_BUILD = "0.31.0.0"
_POWER_DISPLAY = {
    "running": "VM running",
    "deallocated": "VM deallocated",
    "stopped": "VM stopped",
    "starting": "VM starting",
    "stopping": "VM stopping",
    "deallocating": "VM deallocating",
}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _iso(t: dt.datetime) -> str:
    return t.isoformat()


# -- instance views ----------------------------------------------------------------


def vm_instance_view(emu: RouteContext, vm: dict[str, Any]) -> dict[str, Any]:
    """The VM's instance view, from its runtime record (power, agent, OS)."""
    rt = emu.runtime(vm["id"])
    if rt.instance_view is not None:
        seeded: dict[str, Any] = clone(rt.instance_view)
        _set_power(seeded, rt)
        return seeded
    props = vm.get("properties") or {}
    view: dict[str, Any] = {
        "computerName": (props.get("osProfile") or {}).get("computerName", vm.get("name")),
        "hyperVGeneration": "V2",
    }
    running = rt.power_state == "running"
    if running:
        if rt.os_name:
            view["osName"] = rt.os_name
        if rt.os_version:
            view["osVersion"] = rt.os_version
        if rt.agent_version:
            view["vmAgent"] = {
                "vmAgentVersion": rt.agent_version,
                "statuses": [
                    {
                        "code": "ProvisioningState/succeeded",
                        "level": "Info",
                        "displayStatus": "Ready",
                        "message": "GuestAgent is running and processing the extensions.",
                        "time": _iso(_now()),
                    }
                ],
                "extensionHandlers": _handlers(emu, vm),
            }
    elif rt.power_state == "stopped" and rt.agent_version:
        view["vmAgent"] = {
            "vmAgentVersion": "Unknown",
            "statuses": [
                {
                    "code": "ProvisioningState/Unavailable",
                    "level": "Warning",
                    "displayStatus": "Not Ready",
                    "message": "VM status blob is found but not yet populated.",
                    "time": _iso(_now()),
                }
            ],
        }
    os_disk = ((props.get("storageProfile") or {}).get("osDisk") or {}).get("name")
    if os_disk:
        view["disks"] = [
            {
                "name": os_disk,
                "statuses": [
                    {
                        "code": "ProvisioningState/succeeded",
                        "level": "Info",
                        "displayStatus": "Provisioning succeeded",
                        "time": _iso(_now() - dt.timedelta(days=7)),
                    }
                ],
            }
        ]
    exts = []
    for ext in emu.store.of_type(_EXT_TYPE, parent=vm["id"]):
        iv = (ext.get("properties") or {}).get("instanceView")
        if iv:
            exts.append(clone(iv))
    if exts:
        view["extensions"] = exts
    view["statuses"] = []
    _set_power(view, rt)
    return view


def _handlers(emu: RouteContext, vm: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for ext in emu.store.of_type(_EXT_TYPE, parent=vm["id"]):
        iv = (ext.get("properties") or {}).get("instanceView") or {}
        if not iv.get("type"):
            continue
        ready = (ext.get("properties") or {}).get("provisioningState") == "Succeeded"
        out.append(
            {
                "type": iv["type"],
                "typeHandlerVersion": iv.get("typeHandlerVersion"),
                "status": {
                    "code": "ProvisioningState/succeeded" if ready else "ProvisioningState/failed",
                    "level": "Info" if ready else "Error",
                    "displayStatus": "Ready" if ready else "Not Ready",
                },
            }
        )
    return out


def _set_power(view: dict[str, Any], rt: VmRuntime) -> None:
    seeded_power = [
        str(st.get("code", ""))
        for st in view.get("statuses") or []
        if str(st.get("code", "")).lower().startswith("powerstate/")
    ]
    if seeded_power and seeded_power[0].lower() == f"powerstate/{rt.power_state}".lower():
        # a seeded instance view whose power state still holds: served as recorded
        return
    statuses = [
        s
        for s in view.get("statuses") or []
        if not str(s.get("code", "")).lower().startswith(("powerstate/", "provisioningstate/"))
    ]
    prov = {
        "code": "ProvisioningState/succeeded",
        "level": "Info",
        "displayStatus": "Provisioning succeeded",
        "time": _iso(rt.started_at or _now() - dt.timedelta(days=7)),
    }
    # PowerState/* carries no "time" in Azure (AZURE_FACTS §6; spec example
    # VirtualMachine_Get_InstanceView.json, recording test_vm_run_command_e2e).
    power: dict[str, Any] = {
        "code": f"PowerState/{rt.power_state}",
        "level": "Info",
        "displayStatus": _POWER_DISPLAY.get(rt.power_state, f"VM {rt.power_state}"),
    }
    view["statuses"] = [prov, power, *statuses]


def _vm_out(emu: RouteContext, vm: dict[str, Any], *, instance_view: bool) -> dict[str, Any]:
    out: dict[str, Any] = clone(vm)
    props = out.setdefault("properties", {})
    props.pop("instanceView", None)
    exts = [_ext_out(e, instance_view=False) for e in emu.store.of_type(_EXT_TYPE, parent=vm["id"])]
    if exts:
        out["resources"] = exts
    else:
        out.pop("resources", None)
    if instance_view:
        props["instanceView"] = vm_instance_view(emu, vm)
    return out


def _vm(emu: RouteContext, p: dict[str, str]) -> dict[str, Any]:
    return emu.store.require(prov_id(p, _VM_TYPE, p["vm"]))


# -- virtual machines ------------------------------------------------------------------


@ROUTES.route("GET", _VM)
async def _get_vm(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    vm = _vm(emu, p)
    emu.touch(vm["id"])
    return ok(_vm_out(emu, vm, instance_view=expand(req) == "instanceview"))


@ROUTES.route("GET", _VM + "/instanceView")
async def _get_vm_iv(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    vm = _vm(emu, p)
    emu.touch(vm["id"])
    return ok(vm_instance_view(emu, vm))


_VMSS_FILTER = re.compile(r"^\s*'?virtualMachineScaleSet/id'?\s+eq\s+'([^']+)'\s*$", re.IGNORECASE)


def _query(req: EmuRequest, name: str) -> str:
    for k, v in req.query.items():
        if k.lower() in (name.lower(), name.lower().lstrip("$")):
            return v
    return ""


def _status_only(emu: RouteContext, vm: dict[str, Any]) -> dict[str, Any]:
    """``statusOnly=true``: only id, name, type, location and statuses (AZURE_FACTS §7)."""
    out: dict[str, Any] = {k: vm[k] for k in ("id", "name", "type", "location") if k in vm}
    view = vm_instance_view(emu, vm)
    out["properties"] = {"instanceView": {"statuses": view.get("statuses") or []}}
    return clone(out)  # type: ignore[no-any-return]


def _list_vms(emu: RouteContext, req: EmuRequest, vms: list[dict[str, Any]]) -> EmuResponse:
    status_only = req.query.get("statusOnly", "").lower() == "true"
    flt = _query(req, "$filter")
    vmss = None
    if flt:
        m = _VMSS_FILTER.match(flt)
        if m is None:
            raise ArmError(
                400,
                "InvalidParameter",
                f"The value '{flt}' of parameter '$filter' is invalid. Allowed value is "
                "'virtualMachineScaleSet/id' eq '/subscriptions/{subId}/resourceGroups/"
                "{resourceGroupName}/providers/Microsoft.Compute/virtualMachineScaleSets/"
                "{vmssName}'.",
            )
        vmss = m.group(1).lower()
    if expand(req) == "instanceview" and vmss is None:
        # azure-mgmt-compute VirtualMachinesOperations.list / list_all docstrings (AZURE_FACTS §7).
        raise ArmError(
            400,
            "InvalidParameter",
            "'instanceView' enables fetching run time status of all Virtual Machines, this can "
            "only be specified if a valid $filter option is specified.",
        )
    if vmss is not None:
        vms = [
            vm
            for vm in vms
            if str(((vm.get("properties") or {}).get("virtualMachineScaleSet") or {}).get("id", ""))
            .lower()
            .rstrip("/")
            == vmss.rstrip("/")
        ]
    if status_only:
        return page(emu, req, vms, lambda vm: _status_only(emu, vm))
    with_view = expand(req) == "instanceview"
    return page(emu, req, vms, lambda vm: _vm_out(emu, vm, instance_view=with_view))


@ROUTES.route("GET", _VMS)
async def _list_rg_vms(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    emu.store.require_rg(p["sub"], p["rg"])
    emu.touch(req.path)
    return _list_vms(
        emu, req, emu.store.of_type(_VM_TYPE, subscription=p["sub"], resource_group=p["rg"])
    )


@ROUTES.route("GET", "/subscriptions/{sub}/providers/Microsoft.Compute/virtualMachines")
async def _list_sub_vms(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    emu.touch(f"/subscriptions/{p['sub']}")
    return _list_vms(emu, req, emu.store.of_type(_VM_TYPE, subscription=p["sub"]))


@ROUTES.route(
    "GET", "/subscriptions/{sub}/providers/Microsoft.Compute/locations/{loc}/virtualMachines"
)
async def _list_loc_vms(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    """VMs of one location (``virtual_machines.list_by_location``; a High Cost Get)."""
    emu.touch(f"/subscriptions/{p['sub']}")
    loc = p["loc"].replace(" ", "").lower()
    vms = [
        vm
        for vm in emu.store.of_type(_VM_TYPE, subscription=p["sub"])
        if str(vm.get("location", "")).replace(" ", "").lower() == loc
    ]
    return page(emu, req, vms, lambda vm: _vm_out(emu, vm, instance_view=False))


def _power_action(target: str, transient: str) -> Any:
    async def handler(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
        vm = _vm(emu, p)
        rt = emu.runtime(vm["id"])

        def done() -> Outcome:
            rt.power_state = target
            rt.started_at = _now() if target == "running" else None
            return Outcome()

        _, headers = emu.start_operation(
            req,
            namespace="Microsoft.Compute",
            location=str(vm.get("location", "")),
            resource_id=vm["id"],
            kind="action",
            on_success=done,
        )
        if rt.power_state != target:
            rt.power_state = transient
        return EmuResponse(202, headers)

    return handler


ROUTES.add("POST", _VM + "/start", _power_action("running", "starting"))
ROUTES.add("POST", _VM + "/deallocate", _power_action("deallocated", "deallocating"))
ROUTES.add("POST", _VM + "/powerOff", _power_action("stopped", "stopping"))
ROUTES.add("POST", _VM + "/restart", _power_action("running", "starting"))


# -- sizes -------------------------------------------------------------------------------


@ROUTES.route("GET", "/subscriptions/{sub}/providers/Microsoft.Compute/locations/{loc}/vmSizes")
async def _sizes(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    return ok(vm_sizes_document())


@ROUTES.route("GET", "/subscriptions/{sub}/providers/Microsoft.Compute/skus")
async def _skus(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    """Resource SKUs (spec example ListAvailableResourceSkusForARegion.json)."""
    flt = _query(req, "$filter")
    m = re.fullmatch(r"\s*location\s+eq\s+'([^']+)'\s*", flt) if flt else None
    if flt and m is None:
        raise ArmError(
            400,
            "InvalidParameter",
            f"The value '{flt}' of parameter '$filter' is invalid. Only \"location eq "
            "'<location>'\" is supported.",
        )
    locations = [m.group(1)] if m else ["westeurope", "northeurope", "eastus", "westus"]
    value: list[dict[str, Any]] = []
    for loc in locations:
        value.extend(vm_skus_document(loc.replace(" ", "").lower())["value"])
    return ok({"value": value})


@ROUTES.route("GET", _VM + "/vmSizes")
async def _vm_sizes(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    _vm(emu, p)
    return ok(vm_sizes_document())


# -- extensions ---------------------------------------------------------------------------


def _ext_out(ext: dict[str, Any], *, instance_view: bool) -> dict[str, Any]:
    out: dict[str, Any] = clone(ext)
    props = out.setdefault("properties", {})
    props.pop("protectedSettings", None)
    props.pop("protectedSettingsFromKeyVault", None)
    if not instance_view:
        props.pop("instanceView", None)
    return out


def _is_admin_center(props: dict[str, Any]) -> bool:
    return (
        str(props.get("publisher", "")).lower() == "microsoft.admincenter"
        and str(props.get("type", "")).lower() == "admincenter"
    )


def _build_of(version: str | None) -> int | None:
    if not version:
        return None
    nums = re.findall(r"\d+", version)
    for i in range(len(nums) - 1):
        if nums[i] in ("10", "6") and i + 2 < len(nums) and nums[i + 1] in ("0", "3"):
            return int(nums[i + 2])
    big = [int(n) for n in nums if len(n) >= 4]
    return big[0] if big else None


def _os_problem(emu: RouteContext, vm: dict[str, Any]) -> str | None:
    """Why the AdminCenter extension cannot run on this OS (``None`` when it can)."""
    rt = emu.runtime(vm["id"])
    props = vm.get("properties") or {}
    os_type = str(((props.get("storageProfile") or {}).get("osDisk") or {}).get("osType", ""))
    name = rt.os_name or ""
    if os_type.lower() == "linux" or (name and "windows" not in name.lower()):
        return f"The AdminCenter extension supports Windows only; this VM runs {name or 'Linux'}."
    build = _build_of(rt.os_version)
    if build is None:
        spec = guess_os(vm)
        if spec is not None:
            name, build = spec.os_name, _build_of(spec.os_version)
    if build is not None and build < 14393:
        return (
            "Windows Admin Center in the Azure portal requires Windows Server 2016 or later; "
            f"this VM runs {name or 'Windows'} (build {build})."
        )
    return None


def _status(code: str, level: str, display: str, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "level": level,
        "displayStatus": display,
        "message": message,
        "time": _iso(_now()),
    }


def extension_outcome(emu: RouteContext, ext_id: str, vm: dict[str, Any]) -> Outcome:
    """Finish an extension PUT: decide success, update the extension and the guest."""
    ext = emu.store.get(ext_id)
    if ext is None:
        return Outcome("Failed", {"code": "NotFound", "message": "the extension disappeared"})
    props = ext["properties"]
    rt = emu.runtime(vm["id"])
    problems: list[tuple[str, str]] = []
    if rt.power_state != "running":
        problems.append(
            (
                "ComponentStatus/VmState/failed",
                f"The VM is {rt.power_state}; extensions can only be installed on a running VM.",
            )
        )
    admin = _is_admin_center(props)
    handler = str(props.get("typeHandlerVersion", ""))
    settings = props.get("settings") or {}
    port = str(settings.get("port") or "6516") if isinstance(settings, dict) else "6516"
    if admin and not problems:
        os_problem = _os_problem(emu, vm)
        if os_problem:
            problems.append(("ComponentStatus/OsCheck/failed", os_problem))
        mem = vm_memory_mib(vm)
        if mem is not None and mem < 3072:
            size = vm["properties"]["hardwareProfile"]["vmSize"]
            problems.append(
                (
                    "ComponentStatus/MemoryCheck/failed",
                    f"{size} has {mem} MiB of memory; Windows Admin Center needs at least "
                    "3 GiB (3072 MiB).",
                )
            )
        verdict = netpath.outbound_verdict(emu.store, vm, "WindowsAdminCenter", 443)
        if not verdict.allowed or rt.guest.outbound_blocked:
            where = (
                "blocked inside the VM"
                if verdict.allowed
                else f"blocked by rule '{verdict.rule}' of network security group "
                f"'{str(verdict.nsg).rsplit('/', 1)[-1]}'"
            )
            problems.append(
                (
                    "ComponentStatus/Connectivity/failed",
                    "Failed to connect to the Windows Admin Center service (WindowsAdminCenter "
                    f"service tag) over TCP 443 ({where}). Allow outbound HTTPS to the "
                    "WindowsAdminCenter service tag and retry.",
                )
            )
    ext_kind = (
        f"{props.get('publisher', '')}.{props.get('type', '')}" if props.get("publisher") else ""
    )
    version = (
        ADMIN_CENTER_BUILD if admin else (handler + ".0.0" if handler.count(".") == 1 else handler)
    )
    view: dict[str, Any] = {"name": ext["name"], "type": ext_kind, "typeHandlerVersion": version}
    if problems:
        message = " ".join(m for _, m in problems)
        view["statuses"] = [
            _status("ProvisioningState/failed/1", "Error", "Provisioning failed", message)
        ]
        view["substatuses"] = [
            _status(code, "Error", "Provisioning failed", m) for code, m in problems
        ]
        props["provisioningState"] = "Failed"
        props["instanceView"] = view
        return Outcome(
            "Failed",
            {
                "code": "VMExtensionProvisioningError",
                "message": f"VM has reported a failure when processing extension '{ext['name']}' "
                f"(publisher '{props.get('publisher')}' and type '{props.get('type')}'). "
                f"Error message: '{message}'. More information on troubleshooting is available "
                "at https://aka.ms/VMExtensionWindowsAdminCenterTroubleshoot",
            },
        )
    ok_message = (
        f"Windows Admin Center is installed and listening on port {port}."
        if admin
        else "Enable succeeded."
    )
    view["statuses"] = [
        _status("ProvisioningState/succeeded", "Info", "Provisioning succeeded", ok_message)
    ]
    view["substatuses"] = (
        [
            _status(
                "ComponentStatus/Install/succeeded", "Info", "Provisioning succeeded", ok_message
            ),
            _status(
                "ComponentStatus/Connectivity/succeeded",
                "Info",
                "Provisioning succeeded",
                "Connected to the Windows Admin Center service.",
            ),
        ]
        if admin
        else []
    )
    props["provisioningState"] = "Succeeded"
    props["instanceView"] = view
    if admin:
        rt.guest.install_gateway(port)
    return Outcome()


def _ext_id(p: dict[str, str]) -> str:
    return prov_id(p, _VM_TYPE, p["vm"]) + "/extensions/" + p["ext"]


@ROUTES.route("GET", _VM + "/extensions/{ext}")
async def _get_ext(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    _vm(emu, p)
    eid = _ext_id(p)
    emu.touch(eid)
    ext = emu.store.get(eid)
    if ext is None:
        raise not_found(eid)
    return ok(_ext_out(ext, instance_view=expand(req) == "instanceview"))


@ROUTES.route("GET", _VM + "/extensions")
async def _list_ext(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    vm = _vm(emu, p)
    emu.touch(vm["id"] + "/extensions")
    with_view = expand(req) == "instanceview"
    exts = [
        _ext_out(e, instance_view=with_view) for e in emu.store.of_type(_EXT_TYPE, parent=vm["id"])
    ]
    return ok({"value": exts})


@ROUTES.route("PUT,PATCH", _VM + "/extensions/{ext}")
async def _put_ext(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    vm = _vm(emu, p)
    body = json_body(req)
    eid = _ext_id(p)
    existing = emu.store.get(eid)
    if req.method.upper() == "PATCH" and existing is None:
        raise not_found(eid)
    props_in = dict(body.get("properties") or {})
    if existing is not None and req.method.upper() == "PATCH":
        merged = {**existing["properties"], **props_in}
        props_in = merged
    for key in ("publisher", "type", "typeHandlerVersion"):
        if not props_in.get(key):
            raise ArmError(
                400,
                "InvalidParameter",
                f"Required parameter '{key}' is missing (null).",
                details=[{"code": "InvalidParameter", "target": key}],
            )
    _require_running_for_extensions(emu, vm)
    if existing is not None:
        old = existing["properties"]
        for key in ("publisher", "type"):
            if str(old.get(key, "")).lower() != str(props_in.get(key, "")).lower():
                raise ArmError(
                    400,
                    "PropertyChangeNotAllowed",
                    f"Changing property '{key}' is not allowed.",
                    details=[{"code": "PropertyChangeNotAllowed", "target": key}],
                )
    if _vm_busy(emu, vm):
        existing = emu.store.get(eid)
    before = clone(existing) if existing is not None else None
    props_in.pop("protectedSettings", None)
    props_in.pop("protectedSettingsFromKeyVault", None)
    props_in.pop("instanceView", None)
    props_in["provisioningState"] = "Updating" if existing is not None else "Creating"
    old_view = (existing or {}).get("properties", {}).get("instanceView") or {}
    props_in["instanceView"] = {
        "name": existing["name"] if existing is not None else p["ext"],
        "type": f"{props_in['publisher']}.{props_in['type']}",
        "typeHandlerVersion": old_view.get("typeHandlerVersion")
        or (ADMIN_CENTER_BUILD if _is_admin_center(props_in) else props_in["typeHandlerVersion"]),
        "statuses": [
            _status(
                "ProvisioningState/transitioning",
                "Info",
                "Transitioning",
                "Enable in progress",
            )
        ],
        "substatuses": [],
    }
    ext = {
        "name": existing["name"] if existing is not None else p["ext"],
        "id": existing["id"] if existing is not None else eid,
        "type": _EXT_TYPE,
        "location": body.get("location") or vm.get("location"),
        "properties": props_in,
    }
    if body.get("tags") is not None:
        ext["tags"] = dict(body["tags"])
    emu.store.put(ext)
    vm_id = vm["id"]

    def success() -> Outcome:
        current = emu.store.get(vm_id)
        if current is None:
            return Outcome("Failed", {"code": "NotFound", "message": "the VM was deleted"})
        return extension_outcome(emu, eid, current)

    abort = emu.restorer(eid, before)

    def failed(error: dict[str, Any]) -> None:
        # a scripted extension failure: the extension stays, marked Failed (errors.json
        # compute-ext-instanceview-failed-docs shape)
        current = emu.store.get(eid)
        if current is None:
            return
        cprops = current["properties"]
        detail = (error.get("details") or [error])[0] if error else {}
        name = current["name"]
        handler = f"{cprops.get('publisher', '')}.{cprops.get('type', '')}"

        def fill(text: object) -> str:
            return str(text).replace("{extension}", name).replace("{handler}", handler)

        message = fill(detail.get("message", ""))
        for d in error.get("details") or []:
            d["message"] = fill(d.get("message", ""))
        cprops["provisioningState"] = "Failed"
        view = cprops.setdefault("instanceView", {"name": name})
        view["statuses"] = [
            _status("ProvisioningState/failed/0", "Error", "Provisioning failed", message)
        ]
        view["substatuses"] = []

    _, headers = emu.start_operation(
        req,
        namespace="Microsoft.Compute",
        location=str(vm.get("location", "")),
        resource_id=eid,
        kind="put",
        duration=emu.extension_duration(),
        on_success=success,
        on_abort=abort,
        on_fail=failed,
    )
    current = emu.store.get(eid) or ext
    return ok(_ext_out(current, instance_view=False), 200 if existing is not None else 201, headers)


def _vm_busy(emu: RouteContext, vm: dict[str, Any]) -> bool:
    """Answer an extension write while another extension operation runs on the VM.

    Per ``emu.vm_conflict``: ``"409"`` raises Compute's ``Conflict`` (errors.json
    ``compute-409-conflict-concurrent-request``); ``"preempt"`` ends the running operations
    ``Canceled`` / ``OperationPreempted`` (errors.json
    ``compute-lro-canceled-operationpreempted``), undoing their writes, and returns ``True``
    (the caller re-reads what it changed).
    """
    running = emu.ops.under(vm["id"] + "/extensions")
    if not running:
        return False
    if emu.vm_conflict(vm["id"]) == "preempt":
        for op in running:
            op.cancel(
                {
                    "code": "OperationPreempted",
                    "message": "The operation has been preempted by a more recent operation.",
                }
            )
        return True
    raise ArmError(
        409,
        "Conflict",
        "The request failed due to conflict with a concurrent request. To resolve it, please "
        "refer to https://aka.ms/activitylog to get more details on the conflicting requests.",
    )


def _require_running_for_extensions(emu: RouteContext, vm: dict[str, Any]) -> None:
    """Azure refuses extension changes (PUT and DELETE) on a VM that is not running."""
    rt = emu.runtime(vm["id"])
    if rt.power_state != "running":
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"Cannot modify extensions in the VM when the VM is not running. The VM "
            f"'{vm['name']}' is {rt.power_state}.",
        )


@ROUTES.route("DELETE", _VM + "/extensions/{ext}")
async def _delete_ext(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    vm = _vm(emu, p)
    eid = _ext_id(p)
    ext = emu.store.get(eid)
    if ext is None:
        return EmuResponse(204)
    _require_running_for_extensions(emu, vm)
    if _vm_busy(emu, vm):
        ext = emu.store.get(eid)
        if ext is None:
            return EmuResponse(204)
    before = clone(ext)
    ext["properties"]["provisioningState"] = "Deleting"
    vm_id = vm["id"]

    def success() -> Outcome:
        gone = emu.store.delete(eid)
        if gone is not None and _is_admin_center(gone.get("properties") or {}):
            emu.runtime(vm_id).guest.uninstall_gateway()
        return Outcome()

    _, headers = emu.start_operation(
        req,
        namespace="Microsoft.Compute",
        location=str(vm.get("location", "")),
        resource_id=eid,
        kind="delete",
        duration=emu.extension_duration(),
        on_success=success,
        on_abort=emu.restorer(eid, before),
    )
    return EmuResponse(202, headers)


# -- Run Command ----------------------------------------------------------------------------


def _script_lines(script: Any) -> list[str]:
    if isinstance(script, list):
        return [str(s) for s in script]
    if isinstance(script, str):
        return script.splitlines()
    return []


def _guest_run(emu: RouteContext, vm: dict[str, Any], script: Any, parameters: Any) -> Any:
    rt = emu.runtime(vm["id"])
    verdict = netpath.outbound_verdict(emu.store, vm, "WindowsAdminCenter", 443)
    return run_script(rt.guest, _script_lines(script), parameters, outbound_allowed=verdict.allowed)


def _require_running(emu: RouteContext, vm: dict[str, Any]) -> None:
    rt = emu.runtime(vm["id"])
    if rt.power_state != "running":
        raise ArmError(
            409,
            "OperationNotAllowed",
            f"The operation requires the VM to be running (or set to run). The VM "
            f"'{vm['name']}' is {rt.power_state}.",
        )


def _run_command_busy(emu: RouteContext, vm: dict[str, Any]) -> None:
    rt = emu.runtime(vm["id"])
    op = emu.ops.get(rt.run_command_op) if rt.run_command_op else None
    if rt.guest.run_command_busy or (op is not None and not op.done):
        raise ArmError(
            409,
            "Conflict",
            "Run command extension execution is in progress. Please wait for completion "
            "before invoking a run command.",
        )


@ROUTES.route("POST", _VM + "/runCommand")
async def _run_command(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    vm = _vm(emu, p)
    body = json_body(req)
    command = str(body.get("commandId") or "")
    if not command:
        raise ArmError(400, "InvalidParameter", "Required parameter 'commandId' is missing (null).")
    if command not in ("RunPowerShellScript", "RunShellScript"):
        raise ArmError(
            400, "InvalidParameter", f"The command '{command}' is not supported by the emulator."
        )
    _require_running(emu, vm)
    _run_command_busy(emu, vm)
    rt = emu.runtime(vm["id"])
    vm_id = vm["id"]
    script, parameters = body.get("script") or [], body.get("parameters")

    def success() -> Outcome:
        current = emu.store.get(vm_id) or vm
        result = _guest_run(emu, current, script, parameters)
        rt.run_command_op = None
        return Outcome(
            result={
                "value": [
                    {
                        "code": "ComponentStatus/StdOut/succeeded",
                        "level": "Info",
                        "displayStatus": "Provisioning succeeded",
                        "message": result.stdout,
                    },
                    {
                        "code": "ComponentStatus/StdErr/succeeded",
                        "level": "Info",
                        "displayStatus": "Provisioning succeeded",
                        "message": result.stderr,
                    },
                ]
            }
        )

    def abort() -> None:
        rt.run_command_op = None

    op, headers = emu.start_operation(
        req,
        namespace="Microsoft.Compute",
        location=str(vm.get("location", "")),
        resource_id=vm_id + "/runCommand",
        kind="action",
        on_success=success,
        on_abort=abort,
    )
    if not op.done:
        rt.run_command_op = op.id
    return EmuResponse(202, headers)


def _rc_id(p: dict[str, str]) -> str:
    return prov_id(p, _VM_TYPE, p["vm"]) + "/runCommands/" + p["name"]


def _rc_out(doc: dict[str, Any], *, instance_view: bool) -> dict[str, Any]:
    out: dict[str, Any] = clone(doc)
    props = out.setdefault("properties", {})
    params = props.get("protectedParameters")
    if params is not None:
        props.pop("protectedParameters", None)
    if not instance_view:
        props.pop("instanceView", None)
    return out


@ROUTES.route("GET", _VM + "/runCommands/{name}")
async def _get_rc(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    _vm(emu, p)
    rid = _rc_id(p)
    emu.touch(rid)
    doc = emu.store.get(rid)
    if doc is None:
        raise not_found(rid)
    return ok(_rc_out(doc, instance_view=expand(req) == "instanceview"))


@ROUTES.route("GET", _VM + "/runCommands")
async def _list_rc(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    vm = _vm(emu, p)
    with_view = expand(req) == "instanceview"
    docs = emu.store.of_type(_RC_TYPE, parent=vm["id"])
    return page(emu, req, docs, lambda d: _rc_out(d, instance_view=with_view))


@ROUTES.route("PUT", _VM + "/runCommands/{name}")
async def _put_rc(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    vm = _vm(emu, p)
    body = json_body(req)
    rid = _rc_id(p)
    existing = emu.store.get(rid)
    props = dict(body.get("properties") or {})
    source = props.get("source") or {}
    if not isinstance(source, dict) or not (
        source.get("script") or source.get("scriptUri") or source.get("commandId")
    ):
        raise ArmError(400, "InvalidParameter", "Required parameter 'source' is missing (null).")
    _require_running(emu, vm)
    _run_command_busy(emu, vm)
    props.pop("protectedParameters", None)
    props["provisioningState"] = "Updating" if existing is not None else "Creating"
    doc: dict[str, Any] = {
        "name": p["name"],
        "id": rid,
        "type": _RC_TYPE,
        "location": body.get("location") or vm.get("location"),
        "properties": props,
    }
    if body.get("tags") is not None:
        doc["tags"] = dict(body["tags"])
    start = _now()
    emu.store.put(doc)
    vm_id = vm["id"]
    rt = emu.runtime(vm_id)

    def success() -> Outcome:
        current = emu.store.get(vm_id) or vm
        result = _guest_run(emu, current, source.get("script") or "", props.get("parameters"))
        failed = result.exit_code != 0
        doc["properties"]["provisioningState"] = (
            "Failed" if failed and props.get("treatFailureAsDeploymentFailure") else "Succeeded"
        )
        doc["properties"]["instanceView"] = {
            "executionState": "Failed" if failed else "Succeeded",
            "executionMessage": "" if not failed else "Script execution failed.",
            "exitCode": result.exit_code,
            "output": result.stdout,
            "error": result.stderr,
            "startTime": _iso(start),
            "endTime": _iso(_now()),
            "statuses": [],
        }
        rt.run_command_op = None
        return Outcome()

    restore = emu.restorer(rid, existing)

    def abort() -> None:
        rt.run_command_op = None
        restore()

    op, headers = emu.start_operation(
        req,
        namespace="Microsoft.Compute",
        location=str(vm.get("location", "")),
        resource_id=rid,
        kind="put",
        on_success=success,
        on_abort=abort,
    )
    if not op.done:
        rt.run_command_op = op.id
    current = emu.store.get(rid) or doc
    return ok(_rc_out(current, instance_view=False), 200 if existing is not None else 201, headers)


@ROUTES.route("DELETE", _VM + "/runCommands/{name}")
async def _delete_rc(emu: RouteContext, req: EmuRequest, p: dict[str, str]) -> EmuResponse:
    vm = _vm(emu, p)
    rid = _rc_id(p)
    if emu.store.get(rid) is None:
        return EmuResponse(204)

    def success() -> Outcome:
        emu.store.delete(rid)
        return Outcome()

    _, headers = emu.start_operation(
        req,
        namespace="Microsoft.Compute",
        location=str(vm.get("location", "")),
        resource_id=rid,
        kind="delete",
        on_success=success,
    )
    return EmuResponse(202, headers)
