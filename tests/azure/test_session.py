"""AzureSession: validation, client caching and closing (no network)."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core import AzureClouds
from azure.core.credentials import AccessToken
from azure.core.pipeline.policies import SansIOHTTPPolicy

from wac_azure import AzureSession, ConfigurationError, RetryConfig

SUB = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"


class _Cred:
    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("t", 2**31)

    async def close(self) -> None:
        return None


async def test_clients_are_cached_per_subscription_and_closed() -> None:
    session = AzureSession(_Cred())
    async with session:
        c1 = session.compute(SUB)
        assert session.compute(SUB.upper()) is c1
        assert session.compute("11111111-1111-1111-1111-111111111111") is not c1
        n = session.network(SUB)
        r = session.resources(SUB)
        assert type(n).__name__ == "NetworkManagementClient"
        assert type(r).__name__ == "ResourceManagementClient"
        assert c1._config.subscription_id == SUB
    with pytest.raises(ConfigurationError, match="closed"):
        session.compute(SUB)


@pytest.mark.parametrize(
    ("cloud", "url"),
    [
        (AzureClouds.AZURE_PUBLIC_CLOUD, "https://management.azure.com"),
        (AzureClouds.AZURE_CHINA_CLOUD, "https://management.chinacloudapi.cn"),
        ("AZURE_US_GOVERNMENT", "https://management.usgovcloudapi.net"),
    ],
)
def test_cloud_picks_the_endpoint(cloud: Any, url: str) -> None:
    s = AzureSession(_Cred(), cloud=cloud)
    assert s.base_url == url
    assert s.cloud == AzureClouds(cloud)


def test_base_url_overrides_and_must_be_https() -> None:
    assert AzureSession(_Cred(), base_url="https://127.0.0.1:8443/").base_url == (
        "https://127.0.0.1:8443"
    )
    with pytest.raises(ConfigurationError, match="https"):
        AzureSession(_Cred(), base_url="http://127.0.0.1:8080")


def test_bad_options_are_typed_errors() -> None:
    with pytest.raises(ConfigurationError, match="TokenCredential"):
        AzureSession(None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="unknown cloud"):
        AzureSession(_Cred(), cloud="AZURE_MARS")
    with pytest.raises(ConfigurationError):
        AzureSession(_Cred(), polling_interval=-1)
    with pytest.raises(ConfigurationError):
        RetryConfig(attempts=0)


def test_repr_shows_no_credential() -> None:
    text = repr(AzureSession(_Cred()))
    assert "management.azure.com" in text
    assert "_Cred" not in text


# -- one shared, capped connection pool (counted at the emulator's HTTPS front) ---------

SUBS = [f"00000000-0000-0000-0000-00000000000{i}" for i in (1, 2, 3)]


async def _burst(session: AzureSession, emu: Any) -> None:
    """Many requests at once over three subscriptions and both clients."""
    import asyncio

    async def vm(sub: str, name: str) -> None:
        await session.compute(sub).virtual_machines.get("rg-wac", name)

    async def nics(sub: str) -> None:
        async for _ in session.network(sub).network_interfaces.list("rg-wac"):
            pass

    calls = []
    for sub in SUBS:
        for i in range(4):
            calls += [vm(sub, f"vm{i}")] * 3
        calls += [nics(sub) for _ in range(4)]
    await asyncio.gather(*calls)


def _fleet_emulator(latency: float) -> Any:
    from wac_azure.testing import ArmEmulator

    emu = ArmEmulator(seed=0, latency=latency)
    for sub in SUBS:
        for i in range(4):
            emu.add_windows_vm(f"vm{i}", subscription_id=sub)
    return emu


async def _all_closed(srv: Any) -> bool:
    import asyncio

    for _ in range(100):  # the server sees the client's close a moment later
        if srv.connections.open == 0:
            return True
        await asyncio.sleep(0.02)
    return False


async def test_one_pool_for_every_client_and_subscription_capped_at_the_limit() -> None:
    emu = _fleet_emulator(latency=0.05)
    async with emu.serve() as srv:
        async with srv.session(connection_limit=4) as session:
            await _burst(session, emu)
            assert session.in_flight.peak <= 4
        # 3 subscriptions x 2 clients would be 6 pools of their own, each opening several
        assert 1 <= srv.connections.seen <= 4
        assert srv.connections.peak <= 4
        assert await _all_closed(srv), "the session left connections open on exit"


async def test_default_limit_follows_the_pacing_windows_and_bounds_connections() -> None:
    emu = _fleet_emulator(latency=0.02)
    async with emu.serve() as srv:
        async with srv.session() as session:
            await _burst(session, emu)
            # three subscriptions paced: what their buckets need (8 at least each)
            assert session.pacer.connection_window() >= 3 * 8
            peak = session.in_flight.peak
        assert srv.connections.seen <= peak
        assert await _all_closed(srv)


def test_connection_limit_must_be_a_positive_int() -> None:
    for bad in (0, -1, 2.5, True, "8"):
        with pytest.raises(ConfigurationError, match="connection_limit"):
            AzureSession(_Cred(), connection_limit=bad)  # type: ignore[arg-type]


def test_the_environment_proxy_is_looked_up_once_for_arms_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The shared pool trusts the environment (proxy per request, in a thread) only when a
    proxy applies to ARM's host; otherwise every request would pay two thread hops."""
    from wac_azure._azure.session import _env_proxy_for

    for name in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert not _env_proxy_for("https://management.azure.com")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.contoso.example:3128")
    assert _env_proxy_for("https://management.azure.com")
    monkeypatch.setenv("NO_PROXY", "management.azure.com")
    assert not _env_proxy_for("https://management.azure.com")


class _Route(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """A per-call policy sending one subscription's requests to another server (as the
    fleet benchmark routes each subscription to its own emulator process)."""

    def __init__(self, base: str, sub: str, other: str) -> None:
        super().__init__()
        self.base, self.sub, self.other = base, sub, other

    def on_request(self, request: Any) -> None:
        http = request.http_request
        if f"/subscriptions/{self.sub}/" in http.url:
            http.url = self.other + http.url[len(self.base) :]


async def test_idle_connections_over_several_hosts_stay_within_the_limit(
    tmp_path: Any,
) -> None:
    """aiohttp bounds the connections in use, not the idle ones each host keeps: two
    hosts used one after the other kept 4 + 4 open under a limit of 4. The session's
    pool closes its oldest idle connections instead (docs/performance.md, "What holds
    the memory")."""
    import asyncio
    from pathlib import Path

    emu = _fleet_emulator(latency=0.05)
    one, two = SUBS[0], SUBS[1]
    async with emu.serve() as a, emu.serve() as b:
        bundle = Path(tmp_path) / "ca.pem"
        pems = [Path(a.ca_file).read_text(), Path(b.ca_file).read_text()]  # noqa: ASYNC240
        bundle.write_text("".join(pems))
        policy = _Route(a.base_url, two, b.base_url)
        async with a.session(
            connection_limit=4,
            connection_verify=str(bundle),
            client_kwargs={"per_call_policies": [policy]},
        ) as session:
            opened: list[int] = []

            async def burst(sub: str) -> None:
                compute = session.compute(sub)
                await asyncio.gather(
                    *(compute.virtual_machines.get("rg-wac", f"vm{i % 4}") for i in range(12))
                )
                await asyncio.sleep(0.2)  # the servers see the closes a moment later
                opened.append(a.connections.open + b.connections.open)

            for sub in (one, two, one, two):
                await burst(sub)
            assert a.connections.seen >= 1
            assert b.connections.seen >= 1
            assert max(opened) <= 4, opened
        assert await _all_closed(a)
        assert await _all_closed(b)


async def test_one_subscriptions_burst_keeps_within_its_own_window() -> None:
    """A subscription's read burst (ARM's bucket lets 250 reads out at once) no longer
    takes the whole session's window, and as many connections, to itself: it keeps
    within its request window (``SubscriptionPacer.request_window``: what its read and
    write buckets need together at the measured latency, at least its write window)."""
    import asyncio

    emu = _fleet_emulator(latency=0.05)
    async with emu.serve() as srv, srv.session() as session:
        for i in range(12):  # twelve subscriptions paced: a session window of 96 or more
            session.pacer.subscription(f"00000000-0000-0000-0000-0000000001{i:02d}")
        assert session.pacer.connection_window() >= 96
        sub = session.pacer.subscription(SUBS[0])
        # ARM's buckets (25 + 10 a second) before any round trip is measured (0.1 s):
        # Little's law x 2 is 7, at least 8 (each slot can hold a connection)
        assert sub.request_window() == 8
        compute = session.compute(SUBS[0])
        await asyncio.gather(
            *(compute.virtual_machines.get("rg-wac", f"vm{i % 4}") for i in range(80))
        )
        assert session.in_flight.peak <= 8, session.in_flight.peak
        assert sub.in_flight.peak <= 8
        assert srv.connections.seen <= 8


async def test_a_fixed_connection_limit_is_the_only_bound() -> None:
    """``connection_limit=N`` is the caller's choice: no subscription window below it."""
    import asyncio

    emu = _fleet_emulator(latency=0.05)
    async with emu.serve() as srv, srv.session(connection_limit=48) as session:
        compute = session.compute(SUBS[0])
        await asyncio.gather(
            *(compute.virtual_machines.get("rg-wac", f"vm{i % 4}") for i in range(80))
        )
        assert 32 < session.in_flight.peak <= 48


def test_an_unknown_aiohttp_pool_layout_leaves_the_pool_unbounded_not_broken() -> None:
    """``aiohttp>=3.9`` is allowed and the idle bound reads its private pool: a layout it
    does not know must not fail the request that releases a connection."""
    from types import SimpleNamespace

    from wac_azure._azure.session import _trim_idle

    odd = SimpleNamespace(_conns={"host": [object()]}, _acquired=set())
    assert _trim_idle(odd, 0) == 0
    assert _trim_idle(SimpleNamespace(), 0) == 0
