"""Running the guest scripts (``_core.guest``) inside a VM through Run Command.

One ``POST .../virtualMachines/{vm}/runCommand`` per script, waited for as a
long-running operation; its output is parsed by the pure parsers of
``_core.guest``. Only one Run Command runs on a VM at a time: a second gets
409 "execution is in progress", which :func:`run_guest_script` retries (the
library's retry policy).

The scripts only read, so sending the POST again is harmless: a connection
reset on it, or a 5xx, is retried too. azure-core retries a POST only on 500,
503 and 504 (and honours ``Retry-After`` there); the connection failures and
the other 5xx it leaves on a POST are retried by :func:`~wac_azure._azure.retry.retrying`
(``repeatable=True``), the one owner of the library's retries. A failed poll of
the operation (a GET, which azure-core retried already) is not retried again.
"""

from __future__ import annotations

import logging
from typing import Any

from wac_azure._azure.errors import SDK_ERRORS, lro_failure, translate
from wac_azure._azure.retry import retrying
from wac_azure._azure.session import AzureSession
from wac_azure._core.guest import (
    GuestDiagnosis,
    GuestPort,
    parse_diagnosis,
    parse_port,
    run_command_body,
    run_command_output,
)
from wac_azure._core.ids import VmTarget

_log = logging.getLogger(__name__)


async def run_guest_script(
    session: AzureSession,
    target: VmTarget,
    name: str,
    *,
    port: int | None = None,
    region: str | None = None,
    retry: bool = True,
) -> tuple[str, str]:
    """Run guest script ``name`` through one Run Command; return ``(stdout, stderr)``.

    With ``retry`` (default), 409 "execution is in progress" (another Run
    Command), transient LRO failures, a connection reset on the POST and a 5xx
    answer to it are retried with the session's :class:`RetryConfig`;
    ``retry=False`` sends exactly one request (a diagnosis reports a busy VM
    instead of waiting). Everything else raises
    the typed error at once. The caller bounds the time. ``port`` and
    ``region`` (the VM's location) go to the ``diagnose`` script.
    """

    body: Any = run_command_body(name, port=port, region=region)  # raw wire JSON (AZURE_FACTS §7)
    compute = session.compute(target.subscription_id)
    what = f"running the {name!r} guest script on {target.name}"

    async def once() -> Any:
        # a Run Command runs code in the VM: a write (its script and parameters not logged)
        _log.info("running guest script %r on %s (Run Command)", name, target.name)
        poller = await compute.virtual_machines.begin_run_command(
            target.resource_group, target.name, body
        )
        try:
            return await poller.result()
        except SDK_ERRORS as exc:
            failure = lro_failure(exc, what=what, target=target.resource_id)
            if failure is exc:
                # A poll (a GET) failed, after azure-core's own retries: not the POST's
                # failure, so not retried again.
                raise _translated(exc) from exc
            raise failure from exc

    def _translated(exc: Exception) -> BaseException:
        return translate(
            exc,
            what=what,
            vm_id=target.resource_id,
            resource_group=target.resource_group,
            action="Microsoft.Compute/virtualMachines/runCommand/action",
        )

    try:
        if retry:
            result = await retrying(
                once, config=session.retry, sleep=session.sleep, what=what, repeatable=True
            )
        else:
            result = await once()
    except SDK_ERRORS as exc:
        raise _translated(exc) from exc
    stdout, stderr = run_command_output(result)
    _log.debug("guest script %s on %s: %d bytes of stdout", name, target.name, len(stdout))
    return stdout, stderr


async def read_guest_port(session: AzureSession, target: VmTarget) -> GuestPort:
    """The gateway and its port (appsettings.json or ``SmePort``), through one Run Command."""
    stdout, stderr = await run_guest_script(session, target, "port")
    return parse_port(stdout, stderr)


async def read_guest_diagnosis(
    session: AzureSession,
    target: VmTarget,
    *,
    port: int | None = None,
    region: str | None = None,
) -> GuestDiagnosis:
    """Everything the ``diagnose`` script checks, through one Run Command."""
    stdout, stderr = await run_guest_script(session, target, "diagnose", port=port, region=region)
    return parse_diagnosis(stdout, stderr)
