"""A credential that cannot get a token gives ``AuthenticationError`` chained to the
azure-core error, from every public operation, with nothing sent to ARM; a token ARM
refuses (401) gives it too. The credential is the user's own, handed to
``ArmEmulator.session(credential=...)``."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity.aio import ClientSecretCredential

import wac_azure
from wac_azure import AuthenticationError, AzureRequestError, OutcomeStatus
from wac_azure.testing import ArmEmulator

SECRET = "sekrit-client-secret-do-not-print"


class NotSignedIn:
    """What DefaultAzureCredential does when nobody signed in: every token request fails."""

    def __init__(self) -> None:
        self.error = ClientAuthenticationError(
            "DefaultAzureCredential failed to retrieve a token from the included credentials."
        )
        self.calls = 0

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.calls += 1
        raise self.error

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> NotSignedIn:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        return None


class WrongToken(NotSignedIn):
    """A token of another tenant (or an expired one): ARM answers 401."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("not-the-emulators-token", 2**31)


async def test_enable_without_signing_in_raises_authentication_error(emu: ArmEmulator) -> None:
    target = emu.add_windows_vm("vm1")
    credential = NotSignedIn()
    async with emu.session(credential=credential) as session:
        with pytest.raises(AuthenticationError) as info:
            await wac_azure.enable(session, target)
    err = info.value
    assert err.__cause__ is credential.error
    assert isinstance(err, AzureRequestError)  # what callers caught before
    assert "Azure answered None" not in str(err)
    assert "could not authenticate to Azure" in str(err)
    assert "az login" in str(err)
    assert credential.calls >= 1
    assert emu.requests == []  # no request left without a token


async def test_every_operation_reports_it(emu: ArmEmulator) -> None:
    target = emu.add_windows_vm("vm1")
    credential = NotSignedIn()
    async with emu.session(credential=credential) as session:
        with pytest.raises(AuthenticationError):
            await wac_azure.diagnose(session, target)  # not a Diagnosis of unknowns
        with pytest.raises(AuthenticationError):
            await wac_azure.disable(session, target)
        with pytest.raises(AuthenticationError):
            await wac_azure.RequirementChecker(session).check(target)
        with pytest.raises(AuthenticationError):
            await wac_azure.discover(session, target.subscription_id)
        fleet = await wac_azure.enable_many(session, [target])
    outcome = fleet.outcomes[0]
    assert outcome.status is OutcomeStatus.FAILED
    assert isinstance(outcome.error, AuthenticationError)
    assert outcome.error.__cause__ is credential.error
    assert emu.requests == []


async def test_a_credential_whose_authority_is_unreachable(emu: ArmEmulator) -> None:
    # azure-identity raises its own HTTP call's ServiceRequestError here, not a
    # ClientAuthenticationError: it must still read as a sign-in failure, not as
    # "could not reach Azure Resource Manager". Nothing leaves 127.0.0.1.
    target = emu.add_windows_vm("vm1")
    credential = ClientSecretCredential(
        "00000000-0000-0000-0000-0000000000aa",
        "00000000-0000-0000-0000-0000000000bb",
        SECRET,
        authority="https://127.0.0.1:9",
    )
    async with credential, emu.session(credential=credential) as session:
        with pytest.raises(AuthenticationError) as info:
            await wac_azure.enable(session, target, timeout=60)
    err = info.value
    assert isinstance(err.__cause__, ClientAuthenticationError)
    assert "ClientSecretCredential could not get a token" in str(err)
    assert "could not reach Azure Resource Manager" not in str(err)
    assert SECRET not in str(err)
    assert SECRET not in str(err.__cause__)
    assert emu.requests == []


async def test_a_token_arm_refuses_is_an_authentication_error(emu: ArmEmulator) -> None:
    target = emu.add_windows_vm("vm1")
    async with emu.session(credential=WrongToken()) as session:
        with pytest.raises(AuthenticationError) as info:
            await wac_azure.enable(session, target)
    err = info.value
    assert err.status == 401
    assert err.code == "AuthenticationFailed"
    assert isinstance(err.__cause__, HttpResponseError)
    assert "not-the-emulators-token" not in str(err)
    assert [r.status for r in emu.requests] == [401] * len(emu.requests)
    assert emu.writes() == []


async def test_the_emulators_own_credential_is_the_default(emu: ArmEmulator) -> None:
    target = emu.add_windows_vm("vm1")
    async with emu.session() as session:
        preview = await wac_azure.enable(session, target, dry_run=True)
    assert preview.report is not None
