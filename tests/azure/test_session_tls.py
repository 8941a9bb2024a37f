"""A CA bundle path is loaded once: one SSL context, connections reused, bad paths refused."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from wac_azure import AzureSession, ConfigurationError
from wac_azure.testing import ArmEmulator


async def test_a_ca_path_is_loaded_once_for_every_request(
    emu: ArmEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    targets = [emu.add_windows_vm(f"vm{i}") for i in range(3)]
    made: list[Any] = []
    real = ssl.create_default_context

    def counting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        made.append(kwargs.get("cafile") or args)
        return real(*args, **kwargs)

    # srv.session() passes connection_verify=<the server's CA path>
    async with emu.serve() as srv, srv.session() as session:
        monkeypatch.setattr(ssl, "create_default_context", counting)
        compute = session.compute(targets[0].subscription_id)
        for _ in range(3):
            for t in targets:
                vm = await compute.virtual_machines.get(t.resource_group, t.name)
                assert vm.name == t.name
        network = session.network(targets[0].subscription_id)
        nics = [n async for n in network.network_interfaces.list(targets[0].resource_group)]
        assert len(nics) == 3
    # azure-core alone builds a context per request (and so a TLS handshake per request)
    assert made == []


def test_a_missing_ca_path_is_refused_up_front(tmp_path: Path) -> None:
    emu = ArmEmulator(seed=0)
    missing = tmp_path / "nope.pem"
    with pytest.raises(ConfigurationError, match=r"nope\.pem"):
        AzureSession(emu.credential(), connection_verify=str(missing))


def test_a_file_that_is_not_a_ca_bundle_is_refused(tmp_path: Path) -> None:
    emu = ArmEmulator(seed=0)
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    with pytest.raises(ConfigurationError, match="not a PEM CA bundle"):
        AzureSession(emu.credential(), connection_verify=str(junk))
