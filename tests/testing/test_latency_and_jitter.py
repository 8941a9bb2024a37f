"""The emulator's latency (added to every request) and install jitter (spread install times)."""

from __future__ import annotations

import time

import pytest

from wac_azure.testing import ArmEmulator


def test_install_times_spread_by_the_jitter_and_the_seed() -> None:
    emu = ArmEmulator(seed=7, extension_seconds=600.0, extension_jitter=0.5)
    draws = [emu.extension_duration() for _ in range(500)]
    assert all(d is not None and 300.0 <= d <= 900.0 for d in draws)
    assert min(d for d in draws if d is not None) < 330.0
    assert max(d for d in draws if d is not None) > 870.0
    again = ArmEmulator(seed=7, extension_seconds=600.0, extension_jitter=0.5)
    assert [again.extension_duration() for _ in range(500)] == draws
    assert ArmEmulator(extension_seconds=600.0).extension_duration() == 600.0
    assert ArmEmulator(extension_jitter=0.5).extension_duration() is None


async def test_an_install_takes_its_jittered_time() -> None:
    emu = ArmEmulator(seed=1, extension_seconds=100.0, extension_jitter=0.5, time_scale=0.001)
    vm = emu.add_windows_vm("vm1")
    expected = ArmEmulator(seed=1, extension_seconds=100.0, extension_jitter=0.5)
    want = expected.extension_duration()
    assert want is not None
    assert want != 100.0
    async with emu.session() as session:
        compute = session.compute(vm.subscription_id)
        body = {
            "location": "westeurope",
            "properties": {
                "publisher": "Microsoft.AdminCenter",
                "type": "AdminCenter",
                "typeHandlerVersion": "0.0",
                "settings": {"port": "6516"},
            },
        }
        await compute.virtual_machine_extensions.begin_create_or_update(
            vm.resource_group, vm.name, "AdminCenter", body, polling=False
        )
    (op,) = emu.ops.pending()
    assert op.duration == pytest.approx(want)


async def test_latency_is_added_to_every_request() -> None:
    emu = ArmEmulator(seed=0, latency=0.2, time_scale=0.5)  # 0.1 s real per request
    vm = emu.add_windows_vm("vm1")
    async with emu.session() as session:
        compute = session.compute(vm.subscription_id)
        start = time.monotonic()
        for _ in range(3):
            await compute.virtual_machines.get(vm.resource_group, vm.name)
        took = time.monotonic() - start
    assert took >= 0.3


@pytest.mark.parametrize(
    "kwargs", [{"extension_jitter": 1.0}, {"extension_jitter": -0.1}, {"latency": -1.0}]
)
def test_bad_options_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=r"jitter|latency"):
        ArmEmulator(**kwargs)  # type: ignore[arg-type]
