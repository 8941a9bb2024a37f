"""install reports progress: stages in order, a readable last line, callback errors ignored."""

from __future__ import annotations

from wac_azure import (
    AzureSession,
    ExtensionManager,
    ProgressEvent,
    ProgressStage,
)
from wac_azure.testing import ArmEmulator


async def test_install_emits_progress_events_in_order(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    seen: list[ProgressEvent] = []
    await ExtensionManager(session).install(target, progress=seen.append)
    stages = [e.stage for e in seen]
    assert stages[0] is ProgressStage.READING
    assert ProgressStage.INSTALLING in stages
    assert stages[-1] is ProgressStage.DONE
    assert sum(s.terminal for s in stages) == 1
    assert all(e.target == target and e.total == 1 for e in seen)
    assert str(seen[-1]).startswith("vm1 done")  # a readable line
    seen.clear()
    await ExtensionManager(session).install(target, progress=seen.append)
    assert [e.stage for e in seen][-1] is ProgressStage.DONE
    assert "already installed" in str(seen[-1])


async def test_a_raising_progress_callback_does_not_stop_install(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")

    def boom(event: ProgressEvent) -> None:
        raise RuntimeError("callback bug")

    state = await ExtensionManager(session).install(target, progress=boom)
    assert state.succeeded
