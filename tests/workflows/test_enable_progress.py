"""enable reports progress: stages in order, one terminal event, FAILED on refusal, tqdm bars."""

from __future__ import annotations

import pytest

from wac_azure import (
    AzureSession,
    ExtensionManager,
    ProgressEvent,
    ProgressStage,
    RequirementsNotMetError,
    TqdmProgress,
    enable,
)
from wac_azure.testing import ArmEmulator


class _Bar:
    def __init__(self) -> None:
        self.total: int | None = None
        self.n = 0
        self.postfix = ""

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text


async def test_tqdm_progress_drives_enable_and_install(
    emu: ArmEmulator, session: AzureSession
) -> None:
    target = emu.add_windows_vm("vm1")
    bar = _Bar()
    result = await enable(session, target, progress=TqdmProgress(bar))
    assert result.url
    assert bar.total == 1
    assert bar.n == 1
    assert "done 1" in bar.postfix
    bar2 = _Bar()
    await ExtensionManager(session).install(target, progress=TqdmProgress(bar2))
    assert bar2.n == 1


async def test_enable_progress_stages_and_failed(emu: ArmEmulator, session: AzureSession) -> None:
    good = emu.add_windows_vm("vm1")
    seen: list[ProgressEvent] = []
    await enable(session, good, progress=seen.append)
    stages = [e.stage for e in seen]
    for stage in (
        ProgressStage.READING,
        ProgressStage.PLANNED,
        ProgressStage.RULES_APPLIED,
        ProgressStage.INSTALLING,
    ):
        assert stage in stages
    assert stages[-1] is ProgressStage.DONE
    assert sum(s.terminal for s in stages) == 1
    small = emu.add_windows_vm("vm2", size="Standard_B1ms")
    seen.clear()
    with pytest.raises(RequirementsNotMetError):
        await enable(session, small, progress=seen.append)
    assert seen[-1].stage is ProgressStage.FAILED
    assert "memory.minimum" in str(seen[-1])
