"""AzureSession: the one place that builds Azure SDK clients."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import ssl
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any

from azure.core import AzureClouds

from wac_azure._azure.cache import SessionCache
from wac_azure._azure.credential import checked
from wac_azure._azure.pacing import (
    InFlightPolicy,
    Pacer,
    PacingConfig,
    PacingPolicy,
    WindowGate,
)
from wac_azure._azure.redact import RedactingNetworkTraceLoggingPolicy
from wac_azure._azure.retry import RetryConfig
from wac_azure._core.errors import ConfigurationError
from wac_azure._core.validate import check_seconds

if TYPE_CHECKING:
    from azure.core.credentials_async import AsyncTokenCredential
    from azure.core.pipeline.transport import AsyncHttpTransport
    from azure.mgmt.compute.aio import ComputeManagementClient
    from azure.mgmt.network.aio import NetworkManagementClient
    from azure.mgmt.resource.resources.aio import ResourceManagementClient

_log = logging.getLogger(__name__)

_ENDPOINTS = {
    AzureClouds.AZURE_PUBLIC_CLOUD: (
        "https://management.azure.com",
        "https://management.azure.com/.default",
    ),
    AzureClouds.AZURE_CHINA_CLOUD: (
        "https://management.chinacloudapi.cn",
        "https://management.chinacloudapi.cn/.default",
    ),
    AzureClouds.AZURE_US_GOVERNMENT: (
        "https://management.usgovcloudapi.net",
        "https://management.core.usgovcloudapi.net/.default",
    ),
}


def _ssl_setting(verify: bool | str) -> ssl.SSLContext | bool:
    """One ``ssl.SSLContext`` for every connection (``False``: no verification).

    A CA path is loaded once, here: given a path, azure-core alone builds a new
    context for every request, so aiohttp reuses no connection and every request
    pays a TLS handshake.
    """
    if verify is False:
        return False
    if verify is True:
        return ssl.create_default_context()
    cafile = verify
    if not os.path.exists(cafile):
        raise ConfigurationError(
            f"connection_verify={cafile!r}: no such file or directory; pass the path of a "
            "PEM CA bundle (or directory), True to verify with the system's CAs, or False"
        )
    try:
        if os.path.isdir(cafile):
            return ssl.create_default_context(capath=cafile)
        return ssl.create_default_context(cafile=cafile)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigurationError(
            f"connection_verify={cafile!r}: not a PEM CA bundle ({exc})"
        ) from None


#: Whether this Python leaves closed TLS connections lingering (python/cpython#118960).
_LINGERING_TLS = sys.version_info < (3, 12, 8) or (3, 13, 0) <= sys.version_info < (3, 13, 1)
#: Seconds an idle pooled connection is kept (Azure's load balancers keep idle TCP
#: connections 4 minutes by default).
KEEPALIVE_SECONDS = 60.0


def _env_proxy_for(url: str) -> bool:
    """Whether ``HTTPS_PROXY`` and friends (minus ``NO_PROXY``) send ``url`` via a proxy."""
    # lazy: aiohttp loads on the first request (see _SharedTransport)
    from aiohttp.helpers import get_env_proxy_for_url
    from yarl import URL

    try:
        get_env_proxy_for_url(URL(url))
    except LookupError:
        return False
    return True


def _trim_idle(connector: Any, room: int) -> int:
    """Close the pool's oldest idle connections, over every host, until its idle and
    acquired connections together leave ``room`` (never an acquired one). Returns how
    many it closed.

    aiohttp bounds the connections *in use* (``limit``), not the idle ones it keeps per
    host: with several hosts (a sovereign cloud's and the public one, a proxy, or one
    endpoint per subscription as the fleet benchmark routes them) each keeps as many
    idle connections as it once had in use at once, and their TLS buffers add up
    (about 0.32 MB each; 914 of them at N = 4,000 over ten hosts, docs/performance.md).
    """
    try:
        return _trim(connector, room)
    except (AttributeError, TypeError, IndexError, KeyError, ValueError) as exc:
        # aiohttp's private pool layout changed (``aiohttp>=3.9`` is allowed): keep
        # serving requests, only without the bound
        _log.debug("cannot bound the idle connections of this aiohttp: %r", exc)
        return 0


def _trim(connector: Any, room: int) -> int:
    conns = getattr(connector, "_conns", None)
    acquired = getattr(connector, "_acquired", None)
    if not conns or acquired is None:
        return 0
    idle = sum(len(queue) for queue in conns.values())
    excess = idle + len(acquired) - room
    closed = 0
    cleanup = getattr(connector, "_cleanup_closed_transports", None)
    if getattr(connector, "_cleanup_closed_disabled", True):
        cleanup = None
    while excess > 0 and conns:
        # each host's queue is in order of release: its first is its oldest
        key = min(conns, key=lambda k: conns[k][0][1] if conns[k] else float("-inf"))
        queue = conns[key]
        if queue:
            proto, _ = queue[0]
            del queue[0]
            transport = proto.transport
            proto.close()
            if cleanup is not None and getattr(key, "is_ssl", False):
                cleanup.append(transport)  # aborted later if the peer never answers
            excess -= 1
            closed += 1
        if not queue:
            del conns[key]
    return closed


_CONNECTOR_CLASS: Any = None


def _bounded_connector(cap: Callable[[], int], **kwargs: Any) -> Any:
    """An ``aiohttp.TCPConnector`` whose open connections, idle ones included and over
    every host, stay within ``cap()`` (``AzureSession._pool_cap``): it closes its oldest
    idle connections to make room for a new one and as it takes one back."""
    global _CONNECTOR_CLASS
    if _CONNECTOR_CLASS is None:
        # lazy: aiohttp loads on the first request (see _SharedTransport)
        import aiohttp

        class BoundedConnector(aiohttp.TCPConnector):
            _wac_cap: Callable[[], int]
            #: Idle connections closed to stay within the cap.
            trimmed = 0

            async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:
                # the new connection is already counted as acquired (a placeholder)
                self.trimmed += _trim_idle(self, max(1, self._wac_cap()))
                return await super()._create_connection(req, traces, timeout)

            def _release(self, key: Any, protocol: Any, *args: Any, **kw: Any) -> None:
                super()._release(key, protocol, *args, **kw)
                self.trimmed += _trim_idle(self, max(1, self._wac_cap()))

        _CONNECTOR_CLASS = BoundedConnector
    connector = _CONNECTOR_CLASS(**kwargs)
    connector._wac_cap = cap
    return connector


class _SharedTransport:
    """azure-core's aiohttp transport over one aiohttp session and connector, shared by
    every client of an :class:`AzureSession`; built on first use, on the running loop.

    The connector verifies with one ``ssl`` setting and uses at most ``limit``
    connections at once (0: as many as the session's in-flight gate lets through);
    with ``cap`` it also keeps no more than ``cap()`` open, idle ones included, over
    every host (see :func:`_trim_idle`).
    """

    def __init__(
        self,
        context: ssl.SSLContext | bool,
        limit: int,
        base_url: str,
        cap: Callable[[], int] | None = None,
    ) -> None:
        self.context = context
        self.limit = limit
        self.base_url = base_url
        self.cap = cap
        self._inner: Any = None

    def _get(self) -> Any:
        if self._inner is None:
            # lazy: aiohttp's client and azure-core's transport load on the first request
            import aiohttp
            from azure.core.pipeline.transport import AioHttpTransport

            options: dict[str, Any] = dict(
                ssl=self.context,
                limit=self.limit,
                # An idle connection is kept a minute, not aiohttp's 15 s: a fleet's watch
                # rounds come every 15 s or more, and each reconnect is a TLS handshake.
                keepalive_timeout=KEEPALIVE_SECONDS,
                # Before CPython's fix (3.12.8/3.13.1, python/cpython#118960) a closed TLS
                # connection whose peer does not answer the shutdown lingers with its
                # 128 KiB read buffer; aiohttp aborts it after 2 s with this (a 2,000-VM
                # run held 900 of them: 117 MiB).
                enable_cleanup_closed=_LINGERING_TLS,
            )
            connector = (
                _bounded_connector(self.cap, **options)
                if self.cap is not None
                else aiohttp.TCPConnector(**options)
            )
            session = aiohttp.ClientSession(
                connector=connector,
                # With trust_env aiohttp looks the environment's proxy and ~/.netrc up in a
                # thread for every request (two thread hops each: a tenth of a fleet's CPU).
                # Look the proxy up once for ARM's host instead; netrc never applies (a
                # bearer token is sent, and aiohttp refuses both at once).
                trust_env=_env_proxy_for(self.base_url),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
            )
            self._inner = AioHttpTransport(session=session, session_owner=True)
        return self._inner

    async def __aenter__(self) -> _SharedTransport:
        await self.open()
        return self

    async def __aexit__(self, *args: object) -> None:
        await self.close()

    async def open(self) -> None:
        await self._get().open()

    async def close(self) -> None:
        if self._inner is not None:
            inner, self._inner = self._inner, None
            await inner.close()

    async def send(self, request: Any, **kwargs: Any) -> Any:
        return await self._get().send(request, **kwargs)

    async def sleep(self, duration: float) -> None:
        await asyncio.sleep(duration)


class _UnownedTransport:
    """Wrap a caller's transport so that closing one SDK client leaves it open.

    Every client's pipeline would otherwise close the shared transport when the
    client closes; the session closes it once, after all clients.
    """

    def __init__(self, inner: AsyncHttpTransport[Any, Any]) -> None:
        self._inner = inner

    async def __aenter__(self) -> _UnownedTransport:
        return self

    async def __aexit__(self, *args: object) -> None:
        return None

    async def open(self) -> None:
        await self._inner.open()

    async def close(self) -> None:
        return None

    async def send(self, request: Any, **kwargs: Any) -> Any:
        return await self._inner.send(request, **kwargs)

    async def sleep(self, duration: float) -> None:
        await self._inner.sleep(duration)


class AzureSession:
    """Credential, cloud and per-subscription Azure SDK clients, in one place.

    Use it as an async context manager::

        from azure.identity.aio import DefaultAzureCredential
        async with AzureSession(DefaultAzureCredential()) as session:
            report = await RequirementChecker(session).check(target)

    Clients (``azure.mgmt.compute.aio.ComputeManagementClient`` and friends)
    are created on first use, cached per subscription and closed on exit.
    The session does not close the credential: its owner does.

    Keyword-only options:

    * ``cloud`` – an azure-core ``AzureClouds`` value (public cloud by default).
    * ``base_url`` – the ARM endpoint, overriding the cloud's (e.g. an emulator).
    * ``transport`` – an azure-core async transport shared by every client. Without
      one the session builds its own: **one** aiohttp connection pool that every
      client of every subscription shares (the clients never close it; the session
      does, on exit).
    * ``connection_verify`` – ``True``, ``False`` or a CA bundle path for TLS
      (behind a TLS-inspecting proxy). The session loads it once into one
      ``ssl.SSLContext`` that every connection shares (azure-core alone, given a
      path, would build a new context, and so a new connection, for every request).
    * ``connection_limit`` – the most requests in flight at once over every client and
      subscription, and so the most connections the pool opens. By default it follows
      the load: the sum over the subscriptions in use of the requests in flight their
      ARM read and write buckets need at the measured latency (Little's law:
      refill rate × round trip, doubled; at least 8 per subscription), at least 16,
      at most 256; and each subscription's requests within its own window
      (``SubscriptionPacer.request_window``, 11 at ARM's buckets and 150 ms), so that one
      subscription's burst does not take every slot. The pool keeps no more connections
      open, idle ones included and over every host, than ``connection_limit`` (or the
      larger of that window and the sum of the subscriptions' own). Each connection
      costs about 0.32 MB (asyncio's 256 KiB TLS read buffer and OpenSSL's); a burst
      beyond the limit waits for a free slot, not for a new connection.
    * ``polling_interval`` – seconds between long-running-operation polls when
      ARM sends no ``Retry-After`` (the SDK's default is 30).
    * ``retry`` – a :class:`RetryConfig` for the failures the library retries; its
      ``attempts`` also set azure-core's retries of 429/5xx answers and connection
      errors (``retry_status``/``retry_connect``/``retry_read``, at least 3).
    * ``client_kwargs`` – passed to every SDK client (``retry_total``, ``logging_enable``...).
    * ``pacing`` – a :class:`~wac_azure.PacingConfig` for the client-side pacing
      per subscription that every client gets (``session.pacer`` counts requests
      and 429s); ``PacingConfig(enabled=False)`` turns the waiting off.
    """

    def __init__(
        self,
        credential: AsyncTokenCredential,
        *,
        cloud: AzureClouds | str = AzureClouds.AZURE_PUBLIC_CLOUD,
        base_url: str | None = None,
        transport: AsyncHttpTransport[Any, Any] | None = None,
        connection_verify: bool | str = True,
        polling_interval: float | None = None,
        retry: RetryConfig | None = None,
        client_kwargs: dict[str, Any] | None = None,
        pacing: PacingConfig | None = None,
        connection_limit: int | None = None,
    ) -> None:
        if credential is None or not hasattr(credential, "get_token"):
            raise ConfigurationError(
                "AzureSession needs an async TokenCredential such as "
                "azure.identity.aio.DefaultAzureCredential()"
            )
        try:
            self._cloud = AzureClouds(cloud)
        except ValueError:
            known = ", ".join(c.value for c in AzureClouds)
            raise ConfigurationError(f"unknown cloud {cloud!r}; use one of {known}") from None
        default_url, scope = _ENDPOINTS[self._cloud]
        url = (base_url or default_url).rstrip("/")
        if not url.lower().startswith("https://"):
            raise ConfigurationError(
                f"base_url {url!r} must use https: bearer tokens are never sent in clear text"
            )
        if polling_interval is not None:
            check_seconds(polling_interval, "polling_interval", zero=True)
        if connection_limit is not None and (
            isinstance(connection_limit, bool)
            or not isinstance(connection_limit, int)
            or connection_limit < 1
        ):
            raise ConfigurationError(
                f"connection_limit must be a positive integer (or None: sized from the "
                f"pacing windows), got {connection_limit!r}"
            )
        self._credential = credential
        self._base_url = url
        self._scope = scope
        #: What a worker process needs to build the same session (``SessionFactory.of``):
        #: every option but the credential and a caller's transport.
        self.options: dict[str, Any] = {
            "cloud": self._cloud,
            "base_url": url,
            "connection_verify": connection_verify,
            "polling_interval": polling_interval,
            "retry": retry,
            "client_kwargs": dict(client_kwargs or {}),
            "pacing": pacing,
            "connection_limit": connection_limit,
        }
        self._owns_transport = transport is None
        if transport is None:
            # The pool keeps no more connections open, idle ones included, than requests
            # may be in flight (see _pool_cap).
            shared = _SharedTransport(
                _ssl_setting(connection_verify), connection_limit or 0, url, cap=self._pool_cap
            )
            transport = shared  # type: ignore[assignment]
        self._transport = transport
        self.connection_limit = connection_limit
        self._verify = connection_verify
        self._polling_interval = polling_interval
        self.retry = retry or RetryConfig()
        self._client_kwargs = dict(client_kwargs or {})
        #: Client-side pacing per subscription (see ``_azure.pacing``). It waits
        #: and tells time the way the transport does (a ``clock()`` method, if it has
        #: one: virtual time on the in-process emulator), never faster or slower.
        clock = getattr(transport, "clock", None)
        self.pacer = Pacer(
            pacing, clock=clock if callable(clock) else time.monotonic, sleep=self.sleep
        )
        #: Requests in flight over every client (see ``connection_limit``).
        self.in_flight = WindowGate(
            (lambda: connection_limit) if connection_limit else self.pacer.connection_window
        )
        self._clients: dict[tuple[str, str], Any] = {}
        self._closed = False
        self._cap = 0
        self._cap_at = -math.inf
        #: Session-wide caches (VM sizes per location, service tags...), keyed by the
        #: modules that fill them. Cleared on close.
        self.cache: SessionCache = SessionCache()

    def _pool_cap(self) -> int:
        """The most connections the session's own pool keeps open, idle ones included.

        ``connection_limit`` when the caller fixed it; otherwise the larger of the
        session's window and the sum of its subscriptions' own windows (each
        subscription's requests keep within its own, so no connection beyond those is
        ever needed at once). Closing idle connections below what the subscriptions
        use by turns only trades them for TLS handshakes, whose allocations cost more
        memory than the connections they spare (docs/performance.md). Recomputed at
        most once a second: the pool asks on every request.
        """
        if self.connection_limit:
            return self.connection_limit
        now = time.monotonic()
        if now - self._cap_at >= 1.0:
            subs = self.pacer.subscriptions.values()
            self._cap = max(self.in_flight.capacity, sum(p.request_window() for p in subs))
            self._cap_at = now
        return self._cap

    # -- properties ---------------------------------------------------------------

    @property
    def cloud(self) -> AzureClouds:
        """The Azure cloud this session talks to."""
        return self._cloud

    @property
    def polling_interval(self) -> float | None:
        """Seconds between polls of a long-running operation (``None``: Azure's ``Retry-After``
        or azure-core's default)."""
        return self._polling_interval

    @property
    def base_url(self) -> str:
        """The ARM endpoint, without a trailing slash."""
        return self._base_url

    @property
    def own_transport(self) -> bool:
        """Whether the session built its connection pool itself (no ``transport=`` given)."""
        return self._owns_transport

    @property
    def credential(self) -> AsyncTokenCredential:
        """The credential the clients authenticate with."""
        return self._credential

    async def sleep(self, seconds: float) -> None:
        """Sleep the way the transport does (virtual time on the in-process emulator)."""
        check_seconds(seconds, "seconds", zero=True)
        if self._transport is not None:
            await self._transport.sleep(seconds)
        else:
            await asyncio.sleep(seconds)

    # -- clients ------------------------------------------------------------------

    def _kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "base_url": self._base_url,
            "credential_scopes": [self._scope],
            "cloud_setting": self._cloud,
        }
        if self._transport is not None:
            kwargs["transport"] = _UnownedTransport(self._transport)
        if self._polling_interval is not None:
            kwargs["polling_interval"] = self._polling_interval
        # azure-core retries 429/5xx and connection errors itself, but only 3 times each
        # by default: give it as many attempts as the library's own retries, so that a
        # burst of transient answers does not fail a read the library would have retried.
        retries = max(3, self.retry.attempts - 1)
        for key in ("retry_status", "retry_connect", "retry_read"):
            kwargs[key] = retries
        kwargs.update(self._client_kwargs)
        extra = kwargs.get("per_retry_policies") or []
        extra = list(extra) if isinstance(extra, (list, tuple)) else [extra]
        kwargs["per_retry_policies"] = [
            PacingPolicy(self.pacer),
            # a subscription's own window too, unless the caller fixed the limit
            InFlightPolicy(
                self.in_flight,
                self.pacer.clock,
                pacer=None if self.connection_limit else self.pacer,
            ),
            *extra,
        ]
        # azure-core's network trace (logging_enable=True) logs the Authorization header
        # and every body at DEBUG: use the redacting one unless the caller brings a policy.
        if kwargs.get("logging_policy") is None:
            kwargs["logging_policy"] = RedactingNetworkTraceLoggingPolicy(
                logging_enable=bool(kwargs.get("logging_enable", False))
            )
        return kwargs

    def _client(self, kind: str, subscription_id: str) -> Any:
        if self._closed:
            raise ConfigurationError("this AzureSession is closed; open a new one")
        key = (kind, subscription_id.lower())
        client = self._clients.get(key)
        if client is None:
            cls: Any
            # lazy: each management SDK takes up to a second to import; load it on first use
            if kind == "compute":
                from azure.mgmt.compute.aio import ComputeManagementClient

                cls = ComputeManagementClient
            elif kind == "network":
                from azure.mgmt.network.aio import NetworkManagementClient

                cls = NetworkManagementClient
            else:  # lazy, as above
                from azure.mgmt.resource.resources.aio import ResourceManagementClient

                cls = ResourceManagementClient
            # failures to get a token reach translate() as ClientAuthenticationError
            client = cls(checked(self._credential), subscription_id, **self._kwargs())
            self._clients[key] = client
            _log.debug("created %s client for subscription %s", kind, subscription_id)
        return client

    def compute(self, subscription_id: str) -> ComputeManagementClient:
        """The cached aio ``ComputeManagementClient`` for ``subscription_id``."""
        client: ComputeManagementClient = self._client("compute", subscription_id)
        return client

    def network(self, subscription_id: str) -> NetworkManagementClient:
        """The cached aio ``NetworkManagementClient`` for ``subscription_id``."""
        client: NetworkManagementClient = self._client("network", subscription_id)
        return client

    def resources(self, subscription_id: str) -> ResourceManagementClient:
        """The cached aio ``ResourceManagementClient`` for ``subscription_id``."""
        client: ResourceManagementClient = self._client("resources", subscription_id)
        return client

    # -- lifetime -----------------------------------------------------------------

    async def close(self) -> None:
        """Close every client the session created (and the transport it was given)."""
        if self._closed:
            return
        self._closed = True
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            try:
                await client.close()
            except Exception:  # pragma: no cover - closing must not mask the real error
                _log.debug("closing an SDK client failed", exc_info=True)
        if self._transport is not None:
            await self._transport.close()
        self.cache.clear()

    async def __aenter__(self) -> AzureSession:
        if self._closed:
            raise ConfigurationError("this AzureSession is closed; open a new one")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return (
            f"AzureSession(cloud={self._cloud.value}, base_url={self._base_url!r}, "
            f"clients={len(self._clients)})"
        )
