"""Argument checks shared by the public calls and the CLI (pure).

Each raises :class:`~wac_azure.InvalidInputError` (or a subclass) naming the
argument and what it accepts, before anything is read or written. Numbers
(times, counts, ports) raise :class:`~wac_azure.ConfigurationError` (a
``ValueError`` too) for NaN, infinities, negatives, zero where zero means
nothing, and bools or strings where a number is wanted (docs/security.md,
"Input").
"""

from __future__ import annotations

import ipaddress
import math

from wac_azure._core.errors import (
    ConfigurationError,
    InvalidInputError,
)
from wac_azure._core.ids import VmTarget


def _is_number(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)  # NaN, inf
    )


def check_port(port: object, what: str = "port") -> int:
    """``port`` as a TCP port, an ``int`` from 1 to 65535;
    :class:`~wac_azure.ConfigurationError` otherwise."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigurationError(f"{what} must be an integer from 1 to 65535, got {port!r}")
    return port


def check_seconds(value: object, what: str, *, zero: bool = False) -> float:
    """``value`` as seconds: a finite number above zero (``zero=True``: zero too, for a
    wait); :class:`~wac_azure.ConfigurationError` naming ``what`` otherwise."""
    if not _is_number(value) or value < 0 or (value == 0 and not zero):  # type: ignore[operator]
        bound = ">= 0" if zero else "> 0"
        raise ConfigurationError(
            f"{what} must be a finite number of seconds {bound}, got {value!r}"
        )
    return float(value)  # type: ignore[arg-type]


def check_timeout(timeout: object, what: str = "timeout") -> float:
    """``timeout`` as seconds: a finite number above zero (a NaN deadline never expires,
    an infinite one never ends); :class:`~wac_azure.ConfigurationError` otherwise."""
    if not _is_number(timeout) or timeout <= 0:  # type: ignore[operator]
        raise ConfigurationError(
            f"{what} must be a finite positive number of seconds, got {timeout!r}"
        )
    return float(timeout)  # type: ignore[arg-type]


def check_positive(value: object, what: str) -> float:
    """``value`` as a finite number above zero (a rate, a factor);
    :class:`~wac_azure.ConfigurationError` naming ``what`` otherwise."""
    if not _is_number(value) or value <= 0:  # type: ignore[operator]
        raise ConfigurationError(f"{what} must be a finite number > 0, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def check_count(value: object, what: str, *, minimum: int = 1) -> int:
    """``value`` as a count: an ``int`` (not a bool) of at least ``minimum``;
    :class:`~wac_azure.ConfigurationError` naming ``what`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigurationError(f"{what} must be an integer >= {minimum}, got {value!r}")
    return value


def check_fraction(value: object, what: str, *, low: float, high: float) -> float:
    """``value`` as a finite number from ``low`` to ``high``;
    :class:`~wac_azure.ConfigurationError` naming ``what`` otherwise."""
    if not _is_number(value) or not low <= value <= high:  # type: ignore[operator]
        raise ConfigurationError(f"{what} must be a number from {low:g} to {high:g}, got {value!r}")
    return float(value)  # type: ignore[arg-type]


def as_target(target: VmTarget | str) -> VmTarget:
    return VmTarget.parse(target)  # type: ignore[arg-type]


def check_diagnose_options(
    via: str,
    client_ip: str | None,
    timeout: float,
    probe_timeout: float,
    probe_address: object = None,
) -> str | None:
    """Validate :func:`~wac_azure.diagnose`'s options; return ``client_ip`` normalized."""
    if via not in ("private", "public"):
        raise ConfigurationError(f"via must be 'private' or 'public', got {via!r}")
    check_timeout(timeout)
    check_timeout(probe_timeout, "probe_timeout")
    if probe_address is not None:
        if (
            not isinstance(probe_address, tuple)
            or len(probe_address) != 2
            or not isinstance(probe_address[0], str)
            or not probe_address[0].strip()
        ):
            raise ConfigurationError(
                f"probe_address must be a (host, port) tuple, got {probe_address!r}"
            )
        check_port(probe_address[1], "probe_address's port")
    if client_ip is None:
        return None
    try:
        return str(ipaddress.ip_address(str(client_ip).strip()))
    except ValueError:
        raise InvalidInputError(
            f"client_ip {client_ip!r} is not an IP address; give the public address your "
            "browser connects from (e.g. '203.0.113.7')"
        ) from None
