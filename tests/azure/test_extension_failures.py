"""Extension operations that end badly: preempted ones are sent again, handler failures
are reported at once with Azure's own message."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from wac_azure import AzureSession, ExtensionManager
from wac_azure._core.errors import ExtensionInstallError, OperationFailedError
from wac_azure.testing import ArmEmulator, Fault

EXT = r"/extensions/AdminCenter$"
NON_TRANSIENT = (
    "Handler 'Microsoft.AdminCenter.AdminCenter' has reported failure for VM Extension "
    "'AdminCenter' with terminal error code '1009' and error message: 'Enable failed'"
)
TIMEOUT = (
    "Provisioning of VM extension AdminCenter has timed out. Extension provisioning has "
    'taken too long to complete. The extension last reported "Plugin enabled".'
)


def _puts(emu: ArmEmulator) -> int:
    return sum(1 for r in emu.requests if r.method == "PUT" and r.path.endswith("/AdminCenter"))


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("VMExtensionHandlerNonTransientError", NON_TRANSIENT),
        ("VMExtensionProvisioningTimeout", TIMEOUT),
    ],
)
async def test_handler_failure_is_reported_with_azures_message_and_not_retried(
    emu: ArmEmulator, session: AzureSession, code: str, message: str
) -> None:
    target = emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, Fault.lro_failed(code, message), method="PUT", path_regex=EXT)
    with pytest.raises(ExtensionInstallError) as caught:
        await ExtensionManager(session).install(target)
    err = caught.value
    assert message in str(err)
    assert code in str(err)
    assert err.substatuses == (message,)
    assert _puts(emu) == 1  # not retried
    assert isinstance(err.__cause__, OperationFailedError)  # chained, down to azure-core's
    assert isinstance(err.__cause__.__cause__, HttpResponseError)


async def test_preempted_install_is_sent_again(emu: ArmEmulator, session: AzureSession) -> None:
    target = emu.add_windows_vm("vm1")
    emu.faults.add_scripted(1, "OperationPreempted", method="PUT", path_regex=EXT)
    state = await ExtensionManager(session).install(target)
    assert state.succeeded
    assert _puts(emu) == 2
