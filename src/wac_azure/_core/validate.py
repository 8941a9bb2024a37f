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
from collections.abc import Iterable

from wac_azure._core.errors import (
    ConfigurationError,
    InvalidInputError,
)
from wac_azure._core.ids import VmTarget

#: Ports that already belong to a service Windows Server runs or that an admin expects
#: (SSH, HTTPS, RDP, WinRM over HTTP and HTTPS). With every port below 1024 they are
#: refused as WAC's port unless the caller says ``allow_well_known_port=True``.
WELL_KNOWN_PORTS: dict[int, str] = {
    22: "SSH",
    80: "HTTP",
    443: "HTTPS (IIS and other web servers)",
    3389: "Remote Desktop (RDP)",
    5985: "WinRM over HTTP (PowerShell remoting)",
    5986: "WinRM over HTTPS (PowerShell remoting)",
}


def _is_number(value: object) -> bool:
    return (
        not isinstance(value, bool)
        and isinstance(value, (int, float))
        and math.isfinite(value)  # NaN, inf
    )


def well_known_reason(port: int) -> str | None:
    """Why ``port`` is well known (``None`` when it is not): the service it belongs to,
    or that it is a system port (below 1024)."""
    service = WELL_KNOWN_PORTS.get(port)
    if service is not None:
        return f"port {port} is the well-known port of {service}"
    if port < 1024:
        return f"port {port} is a system port (below 1024, reserved for well-known services)"
    return None


def check_port(port: object, what: str = "port", *, allow_well_known_port: bool = True) -> int:
    """``port`` as a TCP port, an ``int`` from 1 to 65535;
    :class:`~wac_azure.ConfigurationError` otherwise.

    Where a caller *chooses* the port Windows Admin Center will listen on (``enable``,
    ``enable_many``, ``ExtensionManager.install``, ``NetworkRulePlanner.plan``, the CLI's
    ``--port``), they pass their ``allow_well_known_port`` (``False`` by default there):
    a well-known port (22, 80, 443, 3389, 5985, 5986, or any port below 1024) then raises
    :class:`~wac_azure.ConfigurationError` saying whose port it is. WAC would take the
    port from, or be unreachable behind, the service that owns it, and the NSG rule for
    it would open that service's port too.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ConfigurationError(f"{what} must be an integer from 1 to 65535, got {port!r}")
    refuse_well_known_port(port, allow_well_known_port=allow_well_known_port, what=what)
    return port


def check_ports(ports: object, what: str = "ports") -> tuple[int, ...]:
    """``ports`` as a tuple of TCP ports (an iterable of ints from 1 to 65535, not a
    string); :class:`~wac_azure.ConfigurationError` naming ``what`` otherwise."""
    if isinstance(ports, (str, bytes)) or not isinstance(ports, Iterable):
        raise ConfigurationError(f"{what} must be an iterable of ports, got {ports!r}")
    return tuple(check_port(p, f"each of {what}") for p in ports)


def check_flag(value: object, what: str) -> bool:
    """``value`` as a flag: ``True`` or ``False`` only. A string such as ``"no"`` is
    truthy and would silently mean yes (open a well-known port, skip the writes), so
    anything else is a :class:`~wac_azure.ConfigurationError` naming ``what``."""
    if not isinstance(value, bool):
        raise ConfigurationError(f"{what} must be True or False, got {value!r}")
    return value


def refuse_well_known_port(
    port: object, *, allow_well_known_port: bool, what: str = "port"
) -> None:
    """Raise :class:`~wac_azure.ConfigurationError` for a well-known ``port`` unless
    ``allow_well_known_port``; anything that is not a port in range is left to the
    caller's own check."""
    if check_flag(allow_well_known_port, "allow_well_known_port"):
        return
    if isinstance(port, bool) or not isinstance(port, int):
        return
    reason = well_known_reason(port) if 1 <= port <= 65535 else None
    if reason is not None:
        raise ConfigurationError(
            f"{what} {port} refused: {reason}; Windows Admin Center would compete with "
            "that service, and the NSG rule opened for it would open that service too. "
            "Choose a port from 1024 to 65535 (the default is 6516), or pass "
            "allow_well_known_port=True (CLI: --allow-well-known-port) if you mean it"
        )


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
