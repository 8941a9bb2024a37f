"""The emulator's HTTPS front: an aiohttp server on loopback with a generated CA.

::

    async with emu.serve() as srv:            # https://127.0.0.1:<ephemeral port>
        async with srv.session() as session:  # AzureSession trusting srv.ca_file
            vm = await session.compute(sub).virtual_machines.get("rg", "vm1")

The server turns each request into an :class:`~wac_azure.testing.backend.wire.EmuRequest`
(with the URL as the client sent it, so ``nextLink`` and operation URLs point
back at the server), awaits ``emu.handle`` and writes the answer. A
``ConnectionReset`` from the emulator drops the TCP connection with a reset.

It binds to loopback addresses only (``127.0.0.1``, ``::1``, ``localhost``):
anything else raises :class:`wac_azure.ConfigurationError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import shutil
import signal
import socket
import ssl
import struct
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any

import attrs

from wac_azure import AzureSession, ConfigurationError
from wac_azure.testing.backend.wire import ConnectionReset, EmuRequest
from wac_azure.testing.fronts.certs import make_certificates
from wac_azure.testing.fronts.host import EmulatorHost
from wac_azure.testing.fronts.transport import StaticTokenCredential

if TYPE_CHECKING:
    from aiohttp import web
    from azure.core.credentials_async import AsyncTokenCredential

__all__ = [
    "ConnectionCount",
    "ServerHandle",
    "check_loopback",
    "run_server_forever",
    "serve",
    "serve_in_thread",
]

_log = logging.getLogger(__name__)

# Headers aiohttp computes itself; copying them from the emulator's answer would clash.
_HOP_HEADERS = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})


def check_loopback(host: str) -> str:
    """Return the address to bind for ``host``, refusing anything but loopback.

    ``localhost`` means ``127.0.0.1``. Raises :class:`wac_azure.ConfigurationError`
    (a ``ValueError``) for any other host, including ``0.0.0.0`` and ``::``, and for
    loopback addresses the generated certificate does not name (``127.0.0.2``).
    """
    text = (host or "").strip()
    if text.lower() == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        address = None
    if address is None or not address.is_loopback:
        raise ConfigurationError(
            f"the emulator serves on loopback only; host {host!r} is not a loopback "
            "address. Use 127.0.0.1, ::1 or localhost."
        )
    if str(address) not in _CERT_ADDRESSES:
        raise ConfigurationError(
            f"host {host!r} is a loopback address the emulator's certificate does not "
            "cover (clients would fail TLS verification). Use 127.0.0.1, ::1 or localhost."
        )
    return str(address)


#: The addresses in the generated certificate's subjectAltName (see ``fronts.certs``).
_CERT_ADDRESSES = frozenset({"127.0.0.1", "::1"})


def _token_of(emu: EmulatorHost) -> str:
    token = getattr(emu, "token", None)
    if not isinstance(token, str) or not token:
        raise ConfigurationError("this ArmEmulator has no bearer token to hand out (emu.token)")
    return token


class ConnectionCount:
    """The TCP connections clients opened to a server front, counted at the front.

    ``seen`` is how many distinct connections carried a request; ``open`` how many of
    them are still open; ``peak`` the most open at once.
    """

    def __init__(self) -> None:
        self._transports: dict[int, Any] = {}
        self.peak = 0

    def note(self, transport: Any) -> None:
        """Count the connection a request came on."""
        if transport is None or id(transport) in self._transports:
            return
        self._transports[id(transport)] = transport
        self.peak = max(self.peak, self.open)

    @property
    def seen(self) -> int:
        """Distinct connections that carried a request."""
        return len(self._transports)

    @property
    def open(self) -> int:
        """Connections still open."""
        return sum(1 for t in self._transports.values() if not t.is_closing())


@attrs.define(eq=False)
class ServerHandle:
    """A running HTTPS emulator: where it is and how to talk to it.

    ``base_url`` (``https://127.0.0.1:<port>``), ``ca_file`` (the CA's PEM
    path; pass it as ``connection_verify``), ``credential`` (an async
    ``TokenCredential`` giving the emulator's valid token), ``token`` (that
    token: a test value, not a secret), ``host`` and ``port``.
    """

    base_url: str
    ca_file: str
    credential: AsyncTokenCredential
    token: str = attrs.field(repr=False)
    host: str
    port: int
    #: The connections clients opened to this server (counted at the front).
    connections: ConnectionCount = attrs.field(factory=ConnectionCount, repr=False)

    def session(self, **kwargs: Any) -> AzureSession:
        """A :class:`wac_azure.AzureSession` for this server.

        ``polling_interval`` defaults to 0.05 s: over real sockets azure-core
        sleeps for real between polls (and falls back to ``polling_interval``
        when the emulator answers ``Retry-After: 0``). Other keyword
        arguments go to ``AzureSession``.
        """
        kwargs.setdefault("polling_interval", 0.05)
        kwargs.setdefault("connection_verify", self.ca_file)
        credential = kwargs.pop("credential", self.credential)
        return AzureSession(credential, base_url=self.base_url, **kwargs)

    def to_dict(self) -> dict[str, Any]:
        """``base_url``, ``ca_file``, ``token``, ``host`` and ``port`` (JSON-safe)."""
        return {
            "base_url": self.base_url,
            "ca_file": self.ca_file,
            "token": self.token,
            "host": self.host,
            "port": self.port,
        }


def _reset(request: web.BaseRequest) -> None:
    """Drop the connection with a TCP reset (SO_LINGER 0, then abort)."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def _make_app(
    emu: EmulatorHost,
    served: dict[str, str] | None = None,
    connections: ConnectionCount | None = None,
) -> web.Application:
    from aiohttp import web  # lazy: aiohttp's server is heavy and only serving needs it

    async def handler(request: web.Request) -> web.StreamResponse:
        if connections is not None:
            connections.note(request.transport)
        body = await request.read()
        url = f"{request.scheme}://{request.host}{request.raw_path}"
        # Links in answers point at the URL the server is served on, not at whatever
        # Host header the client sent (ARM builds nextLink from its own host name).
        base = (served or {}).get("base_url", "")
        req = EmuRequest(
            request.method, url, dict(request.headers), body, front="https", base_url=base
        )
        try:
            answer = await emu.handle(req)
        except ConnectionReset:
            _reset(request)
            # The transport is gone: aiohttp drops whatever is returned.
            return web.Response(status=500)
        except Exception:
            # An emulator bug: answer like ARM's own 500 and keep serving.
            _log.exception("the emulator failed on %s %s", request.method, request.path)
            return web.json_response(
                {"error": {"code": "InternalServerError", "message": "emulator error (see log)"}},
                status=500,
            )
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_HEADERS}
        return web.Response(status=answer.status, headers=headers, body=answer.body)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


@contextlib.asynccontextmanager
async def serve(
    emu: EmulatorHost, *, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[ServerHandle]:
    """Serve ``emu`` over HTTPS on loopback while the context is open.

    ``port=0`` picks a free port. A fresh CA and server certificate are
    written to a temporary directory, removed on exit.
    """
    from aiohttp import web  # lazy: aiohttp's server is heavy and only serving needs it

    bind = check_loopback(host)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise ConfigurationError(f"port must be an integer from 0 to 65535; got {port!r}")
    token = _token_of(emu)
    tmp = tempfile.mkdtemp(prefix="wac-azure-emulator-")
    try:
        files = make_certificates(tmp)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(files.cert_file), str(files.key_file))
        served: dict[str, str] = {}
        connections = ConnectionCount()
        runner = web.AppRunner(
            _make_app(emu, served, connections), access_log=None, handle_signals=False
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, bind, port, ssl_context=ctx, reuse_address=True)
            await site.start()
            addresses = runner.addresses
            if not addresses:  # pragma: no cover - aiohttp always has one socket here
                raise RuntimeError("the HTTPS emulator did not open a socket")
            bound_port = int(addresses[0][1])
            url_host = f"[{bind}]" if ":" in bind else bind
            handle = ServerHandle(
                base_url=f"https://{url_host}:{bound_port}",
                ca_file=str(files.ca_file),
                credential=StaticTokenCredential(token),
                token=token,
                host=bind,
                port=bound_port,
                connections=connections,
            )
            served["base_url"] = handle.base_url
            _log.info("ARM emulator serving on %s", handle.base_url)
            yield handle
        finally:
            await runner.cleanup()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_server_forever(
    emu: EmulatorHost,
    host: str = "127.0.0.1",
    port: int = 0,
    ready_callback: Callable[[ServerHandle], object] | None = None,
    *,
    stop_event: threading.Event | None = None,
) -> None:
    """Serve ``emu`` until ``stop_event`` is set, Ctrl-C or SIGTERM (blocking; own event loop).

    ``ready_callback(handle)`` runs once the server listens (in the serving
    thread). Run it in a thread (see :func:`serve_in_thread`) or as a
    process's main loop (``python -m wac_azure.testing serve``).
    """
    check_loopback(host)

    async def main() -> None:
        terminated = asyncio.Event()
        if threading.current_thread() is threading.main_thread():
            # SIGTERM (a parent process stopping us) exits as cleanly as Ctrl-C.
            with contextlib.suppress(NotImplementedError, RuntimeError):
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, terminated.set)
        async with serve(emu, host=host, port=port) as handle:
            if ready_callback is not None:
                ready_callback(handle)
            # A threading.Event cannot be awaited; poll it (cheap, 20 times a second).
            while not terminated.is_set() and (stop_event is None or not stop_event.is_set()):  # noqa: ASYNC110
                await asyncio.sleep(0.05)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


@contextlib.contextmanager
def serve_in_thread(
    emu: EmulatorHost, *, host: str = "127.0.0.1", port: int = 0, timeout: float = 30.0
) -> Iterator[ServerHandle]:
    """Serve ``emu`` from a background thread; for synchronous clients and benchmarks.

    The emulator then lives in that thread's event loop: do not call its
    coroutines from elsewhere while it serves.
    """
    check_loopback(host)
    ready: list[ServerHandle] = []
    failure: list[BaseException] = []
    started = threading.Event()
    stop = threading.Event()

    def on_ready(handle: ServerHandle) -> None:
        ready.append(handle)
        started.set()

    def target() -> None:
        try:
            run_server_forever(emu, host, port, on_ready, stop_event=stop)
        except BaseException as exc:  # reported to the caller below
            failure.append(exc)
        finally:
            started.set()

    thread = threading.Thread(target=target, name="wac-azure-emulator", daemon=True)
    thread.start()
    try:
        if not started.wait(timeout) or not ready:
            if failure:
                raise failure[0]
            raise RuntimeError("the HTTPS emulator did not start")
        yield ready[0]
    finally:
        stop.set()
        thread.join(timeout)
