"""The TLS probe on 127.0.0.1: its stages, one verifying connection, typed errors."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wac_azure import ConfigurationError, InvalidInputError, WacAzureError
from wac_azure._azure.probe import probe_tls
from wac_azure._core.certificate import ProbeResult, ProbeStatus

from tests._tls import (
    NOT_AFTER,
    closed_port,
    expected_subject,
    make_self_signed,
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


# --------------------------------------------------------------------------- one connection


@asynccontextmanager
async def swapping_listener(*certs: tuple[Path, Path]) -> AsyncIterator[tuple[int, list[int]]]:
    """A TLS server that presents ``certs[i % len(certs)]`` on its i-th connection.

    Yields the port and the list of certificate indexes served, one per connection.
    """
    contexts = []
    for cert, key in certs:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        contexts.append(ctx)
    served: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        index = len(served) % len(contexts)
        served.append(index)
        try:
            await writer.start_tls(contexts[index])
            await reader.read(1024)
        except (ConnectionError, OSError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], served
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture(scope="module")
def other_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A second self-signed certificate (another name), not in any CA file the tests give."""
    return make_self_signed(tmp_path_factory.mktemp("tls-other"), cn="impostor.test")


async def test_an_untrusted_certificate_is_never_reported_trusted_after_a_swap(
    cert_files: tuple[Path, Path], other_cert: tuple[Path, Path]
) -> None:
    """The server shows an untrusted certificate, then a trusted one on the next connection.

    Verifying on one connection and describing another reported the impostor as trusted.
    """
    trusted, _key = cert_files
    async with swapping_listener(other_cert, cert_files) as (port, served):
        result = await probe_tls("127.0.0.1", port, timeout=3, cafile=str(trusted))
    info = result.certificate
    assert info is not None
    assert info.verified is False, (info.subject, info.verified, served)
    assert info.verify_error
    # The certificate could only be read on a second, non-verifying handshake.
    assert served == [0, 1]


async def test_a_trusted_certificate_is_verified_and_described_on_one_connection(
    cert_files: tuple[Path, Path], other_cert: tuple[Path, Path]
) -> None:
    trusted, _key = cert_files
    async with swapping_listener(cert_files, other_cert) as (port, served):
        result = await probe_tls("127.0.0.1", port, timeout=3, cafile=str(trusted))
    info = result.certificate
    assert info is not None
    assert info.verified is True
    assert info.subject == expected_subject(trusted)
    assert served == [0]  # one TLS connection: the verified certificate is the one described


@pytest.mark.parametrize("order", ["impostor-first", "trusted-first"])
async def test_whenever_verified_the_described_certificate_is_the_trusted_one(
    cert_files: tuple[Path, Path], other_cert: tuple[Path, Path], order: str
) -> None:
    trusted, _key = cert_files
    certs = (other_cert, cert_files) if order == "impostor-first" else (cert_files, other_cert)
    async with swapping_listener(*certs) as (port, _served):
        result = await probe_tls("127.0.0.1", port, timeout=3, cafile=str(trusted))
    info = result.certificate
    assert info is not None
    if info.verified:
        assert info.subject == expected_subject(trusted)
    assert info.subject != expected_subject(other_cert[0]) or info.verified is False


# --------------------------------------------------------------------------- odd input

_CLOSED = closed_port()

_hosts = st.one_of(
    st.sampled_from(
        [
            "127.0.0.1",
            "",
            " ",
            "\x00",
            "127.0.0.1\x00",
            "a" * 64 + ".test",
            "a..b",
            "ex ample.test",
            "é" * 70,
            "host/path",
            "user@host",
            "[::1]",
        ]
    ),
    st.text(max_size=12).map(lambda t: t + " "),
    st.integers(),
    st.none(),
    st.binary(max_size=8),
    st.floats(),
)
_ports = st.one_of(
    st.just(_CLOSED),
    st.integers(min_value=-(2**70), max_value=2**70).filter(lambda p: not 1 <= p <= 65535),
    st.sampled_from([0, 65536, 2**16 + 443, "443", 443.0, True, None, b"443"]),
    st.floats(),
)
_timeouts = st.one_of(
    st.floats(min_value=0.05, max_value=0.5),
    st.floats(allow_nan=True, allow_infinity=True).filter(lambda t: not 0 < t < 1e6),
    st.sampled_from(
        [0, -1, "5", None, True, False, float("nan"), float("inf"), 10**400 // 10**399]
    ),
)
_server_names = st.one_of(
    st.none(),
    st.sampled_from(["", ".x", "a\x00b", "x" * 300, "wac-probe.test", "é" * 70 + ".test"]),
    st.integers(),
    st.binary(max_size=4),
)
_cafiles = st.one_of(
    st.none(), st.sampled_from(["/nonexistent/ca.pem", "", "/dev/null", "/etc"]), st.integers()
)
_verifies = st.one_of(st.booleans(), st.sampled_from([None, 1, "yes"]))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    host=_hosts,
    port=_ports,
    timeout=_timeouts,
    server_name=_server_names,
    cafile=_cafiles,
    verify=_verifies,
)
def test_odd_input_gives_a_result_or_a_typed_error(
    host: Any, port: Any, timeout: Any, server_name: Any, cafile: Any, verify: Any
) -> None:
    async def probe() -> ProbeResult | WacAzureError:
        try:
            return await probe_tls(
                host, port, timeout=timeout, server_name=server_name, cafile=cafile, verify=verify
            )
        except WacAzureError as exc:
            return exc

    result = asyncio.run(probe())
    if isinstance(result, WacAzureError):
        assert isinstance(result, InvalidInputError)
        assert "probe" in str(result)
    else:
        assert isinstance(result, ProbeResult)
        assert result.host == host
        assert result.port == port


async def test_odd_arguments_name_the_argument() -> None:
    with pytest.raises(ConfigurationError, match="timeout"):
        await probe_tls("127.0.0.1", 443, timeout=float("nan"))
    with pytest.raises(ConfigurationError, match="timeout"):
        await probe_tls("127.0.0.1", 443, timeout="5")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="port"):
        await probe_tls("127.0.0.1", 70000)
    with pytest.raises(ConfigurationError, match="host"):
        await probe_tls("a" * 64 + ".test", 443)
    with pytest.raises(ConfigurationError, match="cafile"):
        await probe_tls("127.0.0.1", 443, cafile="/nonexistent/ca.pem")
    with pytest.raises(ConfigurationError, match="server_name"):
        await probe_tls("127.0.0.1", 443, server_name=".x")
