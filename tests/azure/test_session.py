"""AzureSession: validation, client caching and closing (no network)."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core import AzureClouds
from azure.core.credentials import AccessToken

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
