"""Progress events and the tqdm-compatible adapter (no tqdm needed)."""

from __future__ import annotations

import pytest

from wac_azure import VmTarget
from wac_azure._core.errors import ConfigurationError
from wac_azure._core.progress import ProgressEvent, ProgressStage, emit
from wac_azure._workflows.fleet.engine import enable_many
from wac_azure._workflows.progress import TqdmProgress
from wac_azure.testing import ArmEmulator

T = VmTarget.from_parts("00000000-0000-0000-0000-000000000001", "rg", "vm1")


class Bar:
    """Quacks like tqdm.tqdm: total, update(n), set_postfix_str(s)."""

    def __init__(self) -> None:
        self.total: int | None = None
        self.n = 0
        self.postfix = ""

    def update(self, n: int = 1) -> None:
        self.n += n

    def set_postfix_str(self, s: str) -> None:
        self.postfix = s


def test_tqdm_adapter_counts_terminal_events() -> None:
    bar = Bar()
    progress = TqdmProgress(bar)
    for stage in (ProgressStage.READING, ProgressStage.PLANNED, ProgressStage.DONE):
        progress(ProgressEvent(T, stage, total=3))
    progress(ProgressEvent(T, ProgressStage.FAILED, total=3, message="boom"))
    assert bar.total == 3
    assert bar.n == 2
    assert progress.counts == {"done": 1, "failed": 1, "skipped": 0}
    assert bar.postfix == "done 1, failed 1"


def test_tqdm_adapter_refuses_what_is_not_a_bar() -> None:
    with pytest.raises(ConfigurationError):
        TqdmProgress(object())


def test_emit_swallows_callback_errors(caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: ProgressEvent) -> None:
        raise ValueError("nope")

    emit(broken, ProgressEvent(T, ProgressStage.DONE, total=1))
    assert "progress callback raised" in caplog.text
    assert str(ProgressEvent(T, ProgressStage.FAILED, 1, "why")) == "vm1 failed: why"
    assert ProgressStage.SKIPPED.terminal
    assert not ProgressStage.INSTALLING.terminal


async def test_bar_reaches_the_number_of_vms() -> None:
    emu = ArmEmulator(seed=0)
    targets = [emu.add_windows_vm(f"vm{i}") for i in range(4)]
    targets.append(emu.add_windows_vm("off", power_state="deallocated"))
    bar = Bar()
    async with emu.session() as session:
        await enable_many(session, targets, progress=TqdmProgress(bar))
    assert bar.total == 5
    assert bar.n == 5
    assert bar.postfix == "done 4, skipped 1"
