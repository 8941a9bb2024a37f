"""The TLS probe against real listeners on 127.0.0.1."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from wac_azure import ConfigurationError
from wac_azure._azure.probe import probe_tls
from wac_azure._core.certificate import ProbeStatus

from tests._tls import (
    NOT_AFTER,
    closed_port,
    expected_subject,
    silent_listener,
    tls_listener,
)


async def test_self_signed_listener_reports_every_stage(cert_files: tuple[Path, Path]) -> None:
    cert, key = cert_files
    async with tls_listener(cert, key) as port:
        result = await probe_tls("127.0.0.1", port, timeout=3)
    assert result.connect is ProbeStatus.OK
    assert result.handshake is ProbeStatus.OK
    assert result.ok
    assert result.tls_version
    assert result.tls_version.startswith("TLS")
    info = result.certificate
    assert info is not None
    # RFC 4514 order, as cryptography prints it (an independent reader of the same DER).
    assert info.subject == expected_subject(cert)
    assert info.issuer == info.subject
    assert info.self_signed is True
    assert info.not_after == NOT_AFTER
    assert set(info.names) == {"wac-probe.test", "127.0.0.1"}
    assert info.hostname_matches is True
    # Not in the system CAs: the chain check fails and says why.
    assert info.verified is False
    assert info.verify_error
    assert "self" in info.verify_error.lower()
    text = str(result)
    assert "wac-probe.test" in text
    assert "not trusted" in text
    doc = result.to_dict()
    assert doc["certificate"]["not_after"] == NOT_AFTER.isoformat()
    assert doc["connect"] == "ok"
    assert doc["handshake"] == "ok"


async def test_certificate_verifies_against_a_given_ca(cert_files: tuple[Path, Path]) -> None:
    cert, key = cert_files
    async with tls_listener(cert, key) as port:
        result = await probe_tls("127.0.0.1", port, timeout=3, cafile=str(cert))
    assert result.certificate is not None
    assert result.certificate.verified is True
    assert result.certificate.verify_error is None


async def test_verify_false_skips_the_trust_check(cert_files: tuple[Path, Path]) -> None:
    cert, key = cert_files
    async with tls_listener(cert, key) as port:
        result = await probe_tls("127.0.0.1", port, timeout=3, verify=False)
    assert result.certificate is not None
    assert result.certificate.verified is None


async def test_closed_port_is_connect_refused() -> None:
    port = closed_port()
    result = await probe_tls("127.0.0.1", port, timeout=2)
    assert result.connect is ProbeStatus.FAILED
    assert result.connect_error is not None
    assert "refused" in result.connect_error
    assert result.handshake is ProbeStatus.SKIPPED
    assert result.certificate is None
    assert not result.ok
    assert "refused" in str(result)


async def test_listener_that_never_handshakes_times_out() -> None:
    async with silent_listener() as port:
        started = time.monotonic()
        result = await probe_tls("127.0.0.1", port, timeout=0.5)
        elapsed = time.monotonic() - started
    assert result.connect is ProbeStatus.OK
    assert result.handshake is ProbeStatus.TIMEOUT
    assert result.handshake_error is not None
    assert "0.5" in result.handshake_error
    assert result.certificate is None
    assert elapsed < 3


async def test_non_positive_timeout_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        await probe_tls("127.0.0.1", 1, timeout=0)
