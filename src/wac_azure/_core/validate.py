"""Argument checks shared by the public calls and the CLI (pure).

Each raises :class:`~wac_azure.InvalidInputError` (or a subclass) naming the
argument and what it accepts, before anything is read or written.
"""

from __future__ import annotations

import ipaddress
import math

from wac_azure._core.errors import (
    ConfigurationError,
    InvalidInputError,
)
from wac_azure._core.ids import VmTarget


def check_port(port: object, what: str = "port") -> int:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise InvalidInputError(f"{what} must be an integer from 1 to 65535, got {port!r}")
    return port


def check_timeout(timeout: object) -> float:
    """``timeout`` as seconds: a finite number above zero (a NaN deadline never expires,
    an infinite one never ends); :class:`~wac_azure.ConfigurationError` otherwise."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ConfigurationError(
            f"timeout must be a finite positive number of seconds, got {timeout!r}"
        )
    return float(timeout)


def as_target(target: VmTarget | str) -> VmTarget:
    return VmTarget.parse(target)  # type: ignore[arg-type]


def check_diagnose_options(
    via: str, client_ip: str | None, timeout: float, probe_timeout: float
) -> str | None:
    """Validate :func:`~wac_azure.diagnose`'s options; return ``client_ip`` normalized."""
    if via not in ("private", "public"):
        raise ConfigurationError(f"via must be 'private' or 'public', got {via!r}")
    if timeout <= 0:
        raise ConfigurationError(f"timeout must be > 0 seconds, got {timeout}")
    if probe_timeout <= 0:
        raise ConfigurationError(f"probe_timeout must be > 0 seconds, got {probe_timeout}")
    if client_ip is None:
        return None
    try:
        return str(ipaddress.ip_address(str(client_ip).strip()))
    except ValueError:
        raise InvalidInputError(
            f"client_ip {client_ip!r} is not an IP address; give the public address your "
            "browser connects from (e.g. '203.0.113.7')"
        ) from None
