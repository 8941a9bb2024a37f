"""Checking one VM against the requirements: :class:`RequirementChecker`.

It reads the VM's facts and its region's service tags (cached for the session)
and runs the pure, registered checks of ``_core.checks``.
"""

from __future__ import annotations

import datetime as _dt
import logging

from wac_azure._azure.deadline import within
from wac_azure._azure.reader import read_vm_facts
from wac_azure._azure.session import AzureSession
from wac_azure._azure.tags import read_service_tags
from wac_azure._core.access import AccessMode
from wac_azure._core.checks import evaluate_requirements
from wac_azure._core.facts import (
    DEFAULT_PORT,
    VmFacts,
)
from wac_azure._core.findings import RequirementReport
from wac_azure._core.ids import VmTarget
from wac_azure._core.validate import check_port, check_timeout

_log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- the checker


class RequirementChecker:
    """Checks whether VMs can run Windows Admin Center.

    ::

        report = await RequirementChecker(session).check(target)
        if not report.passed:
            print(report)
    """

    def __init__(self, session: AzureSession) -> None:
        self._session = session

    async def check(
        self,
        target: VmTarget | str,
        *,
        facts: VmFacts | None = None,
        access: AccessMode | None = None,
        port: int = DEFAULT_PORT,
        timeout: float | None = 300,
    ) -> RequirementReport:
        """Read the VM (unless ``facts`` are given) and the region's service tags, and evaluate.

        ``timeout`` (seconds, default 300; ``None``: no limit) bounds the reads:
        past it, :class:`~wac_azure.OperationTimeoutError`.
        """
        check_port(port)
        if timeout is not None:
            limit = check_timeout(timeout)
            name = target if isinstance(target, str) else getattr(target, "name", target)
            return await within(
                self.check(target, facts=facts, access=access, port=port, timeout=None),
                limit,
                f"checking the requirements of {name}",
            )
        t = VmTarget.parse(target) if isinstance(target, str) else target
        if facts is None:
            facts = await read_vm_facts(self._session, t)
        tags = None
        if facts.location:
            tags = await read_service_tags(
                self._session, facts.target.subscription_id, facts.location
            )
        return evaluate_requirements(
            facts,
            access=access,
            service_tags=tags,
            port=port,
            now=_dt.datetime.now(_dt.UTC),
        )
