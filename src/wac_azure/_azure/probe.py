"""A TLS probe: can the caller reach ``https://<ip>:<port>``, and what answers there?

:func:`probe_tls` reports three results separately, the way a person would
check them one after the other:

1. **connect** – does a TCP connection open within the timeout (refused,
   timed out and unreachable are told apart);
2. **handshake** – does a TLS handshake complete on it (with verification
   off, so that a certificate problem is not mistaken for a network one);
3. **certificate** – the certificate the server sent: subject, issuer,
   validity, names, whether it is self-signed (subject equals issuer) and
   whether its chain verifies against the system's CAs (checked on a second
   connection with verification on; the host name is compared separately,
   because Windows Admin Center's certificate is issued for a DNS name while
   the probe usually dials an IP address).

Only :mod:`asyncio` and :mod:`ssl` are used; the certificate fields are read
from the DER bytes by a small parser here, so no cryptography package is
needed. Nothing but the one host and port is contacted.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
import time
from typing import Any

import attrs

from wac_azure._core.certificate import CertificateInfo, ProbeResult, ProbeStatus, parse_certificate
from wac_azure._core.errors import ConfigurationError

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


async def _verify_chain(
    host: str, port: int, *, timeout: float, cafile: str | None, server_name: str | None
) -> tuple[bool | None, str | None]:
    """Handshake again with verification on: (verified, error)."""
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False  # the name is compared separately (see module docstring)
    loop = asyncio.get_running_loop()
    transport: asyncio.BaseTransport | None = None
    try:
        transport, _ = await asyncio.wait_for(
            loop.create_connection(
                _Sink,
                host,
                port,
                ssl=ctx,
                server_hostname=server_name or "",
                ssl_handshake_timeout=timeout,
            ),
            timeout=timeout * 2,
        )
        return True, None
    except ssl.SSLCertVerificationError as exc:
        return False, str(exc.verify_message or exc.reason or exc)
    except (TimeoutError, OSError) as exc:
        return None, f"verification handshake failed: {type(exc).__name__}: {exc}".rstrip(": ")
    finally:
        _close(transport)


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
    skips the second, verifying connection. Never raises for network
    failures: they are the result.
    """
    if timeout <= 0:
        raise ConfigurationError(f"probe timeout must be > 0 seconds, got {timeout}")
    started = time.monotonic()
    loop = asyncio.get_running_loop()

    def done(**kw: Any) -> ProbeResult:
        return ProbeResult(
            host=host, port=port, timeout=timeout, elapsed=time.monotonic() - started, **kw
        )

    # 1. connect
    try:
        transport, protocol = await asyncio.wait_for(
            loop.create_connection(_Sink, host, port), timeout=timeout
        )
    except TimeoutError:
        return done(
            connect=ProbeStatus.TIMEOUT,
            connect_error=f"no answer within {timeout:g} s (a network rule may drop the packets)",
        )
    except OSError as exc:
        return done(connect=ProbeStatus.FAILED, connect_error=_connect_error(exc))

    # 2. handshake, verification off
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    tls_transport: asyncio.BaseTransport | None = None
    try:
        try:
            tls_transport = await asyncio.wait_for(
                loop.start_tls(
                    transport,
                    protocol,
                    ctx,
                    server_hostname=server_name,
                    ssl_handshake_timeout=timeout,
                ),
                timeout=timeout + 1.0,
            )
        except TimeoutError:
            return done(
                connect=ProbeStatus.OK,
                handshake=ProbeStatus.TIMEOUT,
                handshake_error=f"the TLS handshake did not complete within {timeout:g} s",
            )
        except ConnectionAbortedError as exc:
            # asyncio aborts a handshake that outlives ssl_handshake_timeout this way.
            timed_out = "taking longer" in str(exc)
            return done(
                connect=ProbeStatus.OK,
                handshake=ProbeStatus.TIMEOUT if timed_out else ProbeStatus.FAILED,
                handshake_error=f"the TLS handshake did not complete within {timeout:g} s"
                if timed_out
                else f"{type(exc).__name__}: {exc}",
            )
        except (ssl.SSLError, OSError) as exc:
            return done(
                connect=ProbeStatus.OK,
                handshake=ProbeStatus.FAILED,
                handshake_error=f"{type(exc).__name__}: {exc}",
            )
        if tls_transport is None:  # pragma: no cover - start_tls returns a transport or raises
            return done(
                connect=ProbeStatus.OK,
                handshake=ProbeStatus.FAILED,
                handshake_error="TLS handshake gave no transport",
            )
        sslobj = tls_transport.get_extra_info("ssl_object")
        der = sslobj.getpeercert(binary_form=True) if sslobj is not None else None
        version = sslobj.version() if sslobj is not None else None
        cipher_info = sslobj.cipher() if sslobj is not None else None
    finally:
        _close(tls_transport)
        _close(transport)

    cert: CertificateInfo | None = None
    if der:
        cert = parse_certificate(der, host=host)
        if verify:
            verified, error = await _verify_chain(
                host, port, timeout=timeout, cafile=cafile, server_name=server_name
            )
            cert = attrs.evolve(cert, verified=verified, verify_error=error)
    return done(
        connect=ProbeStatus.OK,
        handshake=ProbeStatus.OK,
        tls_version=version,
        cipher=cipher_info[0] if cipher_info else None,
        certificate=cert,
    )
