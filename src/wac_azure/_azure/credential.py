"""The user's credential as the ARM clients see it: every failure to get a token is one error.

azure-identity reports most sign-in failures as azure-core's
``ClientAuthenticationError`` (``DefaultAzureCredential`` when nobody signed in,
``CredentialUnavailableError``), but not all: a credential whose authority cannot be
reached raises the ``ServiceRequestError`` of its own HTTP call, which would read as
"could not reach Azure Resource Manager". :class:`CheckedCredential` wraps the
credential a session was given so that whatever ``get_token``/``get_token_info`` raise
reaches the library as a ``ClientAuthenticationError`` chained to it, which
:func:`wac_azure._azure.errors.translate` turns into
:class:`~wac_azure.AuthenticationError`.
"""

from __future__ import annotations

import inspect
from types import TracebackType
from typing import Any

from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.exceptions import ClientAuthenticationError


async def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    # As azure-core's ``await_result``: a sync credential's answer is used as it is.
    result = function(*args, **kwargs)
    if inspect.isawaitable(result):
        return await result
    return result


def _failure(credential: object, exc: Exception) -> ClientAuthenticationError:
    name = type(credential).__name__
    return ClientAuthenticationError(
        message=f"{name} could not get a token: {type(exc).__name__}: {exc}"
    )


class CheckedCredential:
    """An async ``TokenCredential`` that asks ``inner`` and turns its failures into
    ``ClientAuthenticationError`` (chained to the original). The session does not own
    the credential: closing this one leaves ``inner`` open."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        try:
            token: AccessToken = await _call(self.inner.get_token, *scopes, **kwargs)
        except ClientAuthenticationError:
            raise
        except Exception as exc:
            raise _failure(self.inner, exc) from exc
        return token

    async def close(self) -> None:
        return None  # the credential's owner closes it

    async def __aenter__(self) -> CheckedCredential:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        return None

    def __repr__(self) -> str:
        return f"CheckedCredential({type(self.inner).__name__})"


class CheckedTokenInfoCredential(CheckedCredential):
    """:class:`CheckedCredential` for a credential that also has ``get_token_info``
    (azure-core then calls that one instead of ``get_token``)."""

    async def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        try:
            info: AccessTokenInfo = await _call(self.inner.get_token_info, *scopes, options=options)
        except ClientAuthenticationError:
            raise
        except Exception as exc:
            raise _failure(self.inner, exc) from exc
        return info


def checked(credential: Any) -> CheckedCredential:
    """``credential`` wrapped so that any failure to get a token is a
    ``ClientAuthenticationError`` (with ``get_token_info`` when it has one)."""
    if hasattr(credential, "get_token_info"):
        return CheckedTokenInfoCredential(credential)
    return CheckedCredential(credential)
