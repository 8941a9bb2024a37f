"""Chaos figures, printed again in pytest's terminal summary at the end of the session."""

from __future__ import annotations

import json
from typing import Any

#: (run name, figures) of every chaos run of this session, in order.
FIGURES: list[tuple[str, dict[str, Any]]] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not FIGURES:
        return
    terminalreporter.section("wac_azure chaos figures")
    for name, figures in FIGURES:
        keys = (
            "vms",
            "requests",
            "faults_injected",
            "retries_azure_core",
            "retries_library",
            "vms_converged",
            "rules_lost",
            "wide_open_rules",
            "second_run_writes",
        )
        line = ", ".join(f"{k}={figures.get(k)}" for k in keys)
        terminalreporter.write_line(f"{name}: {line}")
        terminalreporter.write_line(f"  faults by kind: {json.dumps(figures['faults_by_kind'])}")
