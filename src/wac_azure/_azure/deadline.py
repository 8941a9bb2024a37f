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

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from wac_azure._core.errors import (
    OperationTimeoutError,
)

T = TypeVar("T")


async def within(coro: Awaitable[T], timeout: float, what: str) -> T:
    """Await ``coro`` for at most ``timeout`` seconds (asyncio.wait_for, Python 3.10-safe)."""
    try:
        return await asyncio.wait_for(coro, timeout)
    except TimeoutError:
        raise OperationTimeoutError(
            f"{what} did not finish within {timeout:g} s; Azure may still be working on it "
            "(re-run the same call: it picks up where Azure is)"
        ) from None
