"""Requirement checks: can this VM run Windows Admin Center, and if not, why.

:func:`evaluate_requirements` is pure: a function of a :class:`VmFacts`
snapshot and the caller's choices (access mode, port, the region's service
tags, the time). :class:`RequirementChecker` reads the facts (and the
service tags of the VM's region, cached for the session) and evaluates.

Check codes are stable; docs/requirements.md describes each one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wac_azure._core.errors import InvalidInputError
from wac_azure._core.findings import Check, RequirementReport
from wac_azure._core.nsg import Access

if TYPE_CHECKING:
    pass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    pass

#: Failed checks that the network plan repairs (a deny rule the planner routes
#: around): ``enable`` / ``enable_many`` apply the plan instead of refusing.
PLANNABLE_CHECKS = frozenset(
    {"network.outbound_wac", "network.outbound_entra", "network.inbound_path"}
)
#: Checks about *connecting* to Windows Admin Center, not about installing it:
#: a failure there does not stop ``ExtensionManager.install``.
CONNECT_ONLY_CHECKS = frozenset({"network.inbound_path", "network.exposure"})


def blocking_checks(report: RequirementReport, *, purpose: str) -> tuple[Check, ...]:
    """The failed checks that stop an operation, in report order (empty: go on).

    ``purpose="install"`` (:meth:`~wac_azure.ExtensionManager.install`): every
    failure except the connect-only ones (``network.inbound_path``,
    ``network.exposure``: they do not affect installing). ``purpose="enable"``
    (:func:`~wac_azure.enable`, :func:`~wac_azure.enable_many`): every failure
    except those the network plan repairs (:data:`PLANNABLE_CHECKS`).
    *Unknown* and *warn* checks never block: the caller reports them and goes
    on (Azure is the final judge), and an unknown is never shown as a pass.
    """
    if purpose == "install":
        exempt = CONNECT_ONLY_CHECKS
    elif purpose == "enable":
        exempt = PLANNABLE_CHECKS
    else:
        raise InvalidInputError(f"purpose must be 'install' or 'enable', got {purpose!r}")
    return tuple(c for c in report.failures if c.code not in exempt)


def _unfixed_network_failures(report: Any, plan: Any) -> list[str]:
    """The plannable failed checks the plan leaves failing (all, if a needed flow stays denied)."""

    failed = [c.code for c in report.failures if c.code in PLANNABLE_CHECKS]
    if not failed:
        return []
    denied = [chk for chk in getattr(plan, "checks", ()) if chk.after.access is Access.DENY]
    return failed if denied else []
