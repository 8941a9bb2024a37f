"""ExtensionManager: install, inspect, locate and uninstall the ``AdminCenter`` VM extension.

Facts this module relies on are in AZURE_FACTS.md §1 (extension) and §4
(inside the VM). Decisions:

* **Idempotent.** ``install`` writes only when the deployed extension differs
  from what is asked (port, salt, proxy) or ended ``Failed``; a second call
  with the same settings performs no write and returns ``changed=False``.
* **Salt.** The salt hashes the VM's IP into its public DNS record, so it
  must stay stable: a deployed salt is always reused; a VM without one gets a
  fresh random ``secrets.token_hex(16)`` (32 hex characters). Pass ``salt=``
  to choose it, e.g. to keep the same salt across an uninstall/reinstall
  (``(await manager.status(t)).salt`` gives it).
* **Proxy.** ``proxy=None`` keeps the proxy already deployed (compared and
  kept as it is); ``proxy=False`` removes it; a URL or ``{mode, address}``
  sets it (only that argument is validated).
* **Requirements.** A failed check that matters to installing
  (``_requirements.blocking_checks(report, purpose="install")``: every
  failure except ``network.inbound_path`` and ``network.exposure``) refuses
  the install before any write (:class:`~wac_azure.RequirementsNotMetError`);
  an *unknown* check (a custom image whose OS cannot be told...) is reported
  (log and progress) and the install goes on: Azure is the final judge.
  ``skip_checks=True`` skips them.
* **Retries.** azure-core retries 408/429/5xx; the library's policy
  (:func:`wac_azure._retry.retrying`) retries 409 "in progress" answers and
  operations that ended ``Failed`` with a transient code
  (``OperationPreempted``...). Everything else fails at once.
* **Timeouts.** Every public call takes ``timeout=`` (seconds) bounding all of
  its waits; past it, :class:`~wac_azure.OperationTimeoutError`.
"""

from __future__ import annotations

import ipaddress

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
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise InvalidInputError(f"timeout must be a positive number of seconds, got {timeout!r}")
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
