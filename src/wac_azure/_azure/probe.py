"""A TLS probe: can the caller reach ``https://<ip>:<port>``, and what answers there?

:func:`probe_tls` reports three results separately, the way a person would
check them one after the other:

1. **connect** – does a TCP connection open within the timeout (refused,
   timed out and unreachable are told apart);
2. **handshake** – does a TLS handshake complete on it;
3. **certificate** – the certificate the server sent: subject, issuer,
   validity, names, whether it is self-signed (subject equals issuer) and
   whether its chain verifies against the system's CAs (or ``cafile``). The
   host name is compared separately, because Windows Admin Center's
   certificate is issued for a DNS name while the probe usually dials an IP
   address.

**One connection for the verdict and the report.** With ``verify=True`` the
handshake is made with chain verification on: when it succeeds, the
certificate reported as trusted is the very one that was verified, read from
the same TLS connection. When the chain does not verify, the handshake fails
with a certificate error (a certificate problem, not a network one) and
Python's :mod:`ssl` gives no certificate for it, so a second handshake with
verification off reads the certificate to describe; the verdict stays
*not trusted*. A server that presents different certificates on different
connections can therefore make the probe describe a certificate as untrusted,
but never one it did not verify as trusted. (Verifying on one connection and
describing the certificate of another, as this probe once did, let a
certificate swapped between them be reported trusted.)

Only typed errors come out: bad arguments raise
:class:`~wac_azure.ConfigurationError` (or another
:class:`~wac_azure.InvalidInputError`) naming the argument; network failures
are the result, never an exception. Only :mod:`asyncio` and :mod:`ssl` are
used; the certificate fields are read from the DER bytes by a small parser,
so no cryptography package is needed. Nothing but the one host and port is
contacted.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import logging
import ssl
import time
from typing import Any

import attrs

from wac_azure._core.certificate import CertificateInfo, ProbeResult, ProbeStatus, parse_certificate
from wac_azure._core.errors import ConfigurationError
from wac_azure._core.validate import check_port, check_timeout

# --------------------------------------------------------------------------- probe


_log = logging.getLogger(__name__)


class _Sink(asyncio.Protocol):
    """A protocol that ignores data; the probe only needs the transport."""


def _connect_error(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return "connection refused (nothing listens on the port, or a firewall rejects it)"
    if isinstance(exc, OSError) and exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
        return f"host unreachable: {exc.strerror or exc}"
    return f"{type(exc).__name__}: {exc}"


def _close(transport: asyncio.BaseTransport | None) -> None:
    if transport is not None:
        try:
            transport.abort() if isinstance(transport, asyncio.Transport) else transport.close()
        except Exception:  # pragma: no cover - best effort
            _log.debug("closing probe transport failed", exc_info=True)


def _check_host(host: object) -> str:
    if not isinstance(host, str) or not host.strip():
        raise ConfigurationError(f"probe host must be an IP address or a DNS name, got {host!r}")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host
    bad = next((c for c in host if c.isspace() or not c.isprintable() or c in "/\\@"), None)
    try:
        if bad is not None:
            raise ValueError(f"it contains {bad!r}")
        host.encode("idna")
    except (UnicodeError, ValueError) as exc:
        raise ConfigurationError(
            f"probe host {host!r} is neither an IP address nor a valid DNS name ({exc}); "
            "give the VM's IP address or its DNS name"
        ) from None
    return host


def _check_server_name(server_name: object) -> str | None:
    if server_name is None:
        return None
    problem = None
    if not isinstance(server_name, str) or not server_name or server_name.startswith("."):
        problem = "it must be a non-empty DNS name"
    else:
        try:
            # exactly the check ssl makes on server_hostname, without connecting
            ssl.create_default_context().wrap_bio(
                ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname=server_name
            )
        except (UnicodeError, ValueError, TypeError) as exc:
            problem = str(exc)
    if problem is not None or not isinstance(server_name, str):
        raise ConfigurationError(
            f"probe server_name {server_name!r} cannot be sent as SNI ({problem}); give the "
            "DNS name of the certificate, or None"
        )
    return server_name


def _contexts(cafile: object, verify: object) -> tuple[ssl.SSLContext, ssl.SSLContext | None]:
    """The handshake contexts: (no verification, chain verification or ``None``)."""
    if not isinstance(verify, bool):
        raise ConfigurationError(f"probe verify must be True or False, got {verify!r}")
    if cafile is not None and not isinstance(cafile, str):
        raise ConfigurationError(f"probe cafile must be a path to a PEM file, got {cafile!r}")
    plain = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    plain.check_hostname = False
    plain.verify_mode = ssl.CERT_NONE
    if not verify:
        return plain, None
    try:
        verifying = ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError, ValueError) as exc:
        raise ConfigurationError(
            f"probe cafile {cafile!r} cannot be loaded as PEM CA certificates ({exc}); give a "
            "readable PEM file, or None for the system's CAs"
        ) from None
    verifying.check_hostname = False  # the name is compared separately (see module docstring)
    return plain, verifying


@attrs.frozen
class _Handshake:
    """What one TLS connection showed."""

    der: bytes | None
    version: str | None
    cipher: str | None


@attrs.frozen
class _Untrusted:
    """A handshake that failed on the certificate's chain, and why."""

    reason: str


async def probe_tls(
    host: str,
    port: int,
    *,
    timeout: float = 5.0,
    server_name: str | None = None,
    cafile: str | None = None,
    verify: bool = True,
) -> ProbeResult:
    """Probe ``https://host:port``: TCP connect, TLS handshake, certificate.

    ``timeout`` (seconds) bounds the connect and the handshake each.
    ``server_name`` is sent as SNI (none for an IP address unless given);
    ``cafile`` replaces the system CAs for the trust check; ``verify=False``
    skips the trust check. The certificate reported as trusted is the one
    verified, on the same TLS connection. Never raises for network failures:
    they are the result; bad arguments raise
    :class:`~wac_azure.ConfigurationError` (an :class:`~wac_azure.InvalidInputError`
    for the port).
    """
    host = _check_host(host)
    port = check_port(port, "probe port")
    try:
        timeout = check_timeout(timeout)
    except ConfigurationError as exc:
        raise ConfigurationError(f"probe {exc}") from None
    server_name = _check_server_name(server_name)
    plain, verifying = _contexts(cafile, verify)
    started = time.monotonic()
    loop = asyncio.get_running_loop()

    def done(**kw: Any) -> ProbeResult:
        return ProbeResult(
            host=host, port=port, timeout=timeout, elapsed=time.monotonic() - started, **kw
        )

    async def connect() -> tuple[asyncio.BaseTransport, asyncio.BaseProtocol] | ProbeResult:
        try:
            async with asyncio.timeout(timeout):
                return await loop.create_connection(_Sink, host, port)
        except TimeoutError:
            return done(
                connect=ProbeStatus.TIMEOUT,
                connect_error=f"no answer within {timeout:g} s (a network rule may drop the "
                "packets)",
            )
        except OSError as exc:
            return done(connect=ProbeStatus.FAILED, connect_error=_connect_error(exc))
        except (UnicodeError, ValueError) as exc:  # getaddrinfo refusing the name itself
            raise ConfigurationError(
                f"probe host {host!r} cannot be resolved as given ({exc}); give the VM's IP "
                "address or its DNS name"
            ) from None

    def handshake_failed(exc: BaseException) -> ProbeResult:
        if isinstance(exc, TimeoutError) or (
            # asyncio aborts a handshake that outlives ssl_handshake_timeout this way.
            isinstance(exc, ConnectionAbortedError) and "taking longer" in str(exc)
        ):
            return done(
                connect=ProbeStatus.OK,
                handshake=ProbeStatus.TIMEOUT,
                handshake_error=f"the TLS handshake did not complete within {timeout:g} s",
            )
        return done(
            connect=ProbeStatus.OK,
            handshake=ProbeStatus.FAILED,
            handshake_error=f"{type(exc).__name__}: {exc}",
        )

    async def handshake(ctx: ssl.SSLContext) -> _Handshake | _Untrusted | ProbeResult:
        """Connect and handshake with ``ctx``: what the connection showed, or why not."""
        opened = await connect()
        if isinstance(opened, ProbeResult):
            return opened
        transport, protocol = opened
        tls: asyncio.BaseTransport | None = None
        try:
            async with asyncio.timeout(timeout + 1.0):
                tls = await loop.start_tls(
                    transport,  # type: ignore[arg-type]
                    protocol,
                    ctx,
                    server_hostname=server_name,
                    ssl_handshake_timeout=timeout,
                )
            sslobj = tls.get_extra_info("ssl_object") if tls is not None else None
            if sslobj is None:  # pragma: no cover - start_tls returns a TLS transport or raises
                return handshake_failed(ConnectionError("the TLS handshake gave no transport"))
            cipher = sslobj.cipher()
            return _Handshake(
                der=sslobj.getpeercert(binary_form=True),
                version=sslobj.version(),
                cipher=cipher[0] if cipher else None,
            )
        except ssl.SSLCertVerificationError as exc:
            return _Untrusted(str(exc.verify_message or exc.reason or exc))
        except (TimeoutError, ssl.SSLError, OSError) as exc:
            return handshake_failed(exc)
        finally:
            _close(tls)
            _close(transport)

    verified: bool | None = None
    verify_error: str | None = None
    shook = await handshake(verifying or plain)
    if isinstance(shook, _Untrusted):
        verified, verify_error = False, shook.reason
        # No certificate comes with a failed verification: read it on a second
        # handshake, verification off. The verdict stays "not trusted".
        shook = await handshake(plain)
    elif isinstance(shook, _Handshake) and verifying is not None:
        verified = True
    if isinstance(shook, ProbeResult):
        return shook
    if isinstance(shook, _Untrusted):  # pragma: no cover - CERT_NONE verifies nothing
        return handshake_failed(ssl.SSLError(shook.reason))
    cert: CertificateInfo | None = None
    if shook.der:
        cert = attrs.evolve(
            parse_certificate(shook.der, host=host), verified=verified, verify_error=verify_error
        )
    return done(
        connect=ProbeStatus.OK,
        handshake=ProbeStatus.OK,
        tls_version=shook.version,
        cipher=shook.cipher,
        certificate=cert,
    )
