"""One status vocabulary: requirement checks and diagnosis findings share one enum."""

from __future__ import annotations

import json

import pytest

from wac_azure import CheckStatus, Finding, FindingStatus


def test_check_and_finding_statuses_are_one_enum() -> None:
    assert CheckStatus is FindingStatus
    assert FindingStatus.OK is CheckStatus.PASS
    assert FindingStatus.PROBLEM is CheckStatus.FAIL
    assert [s.value for s in CheckStatus] == ["pass", "fail", "warn", "unknown"]


@pytest.mark.parametrize(
    ("text", "member"),
    [("pass", "PASS"), ("ok", "PASS"), ("fail", "FAIL"), ("problem", "FAIL"), ("warn", "WARN")],
)
def test_either_word_finds_the_status(text: str, member: str) -> None:
    assert FindingStatus(text) is CheckStatus[member]


def test_an_unknown_word_is_refused() -> None:
    with pytest.raises(ValueError, match="maybe"):
        CheckStatus("maybe")


def test_a_diagnosis_keeps_its_words() -> None:
    finding = Finding(2, "inbound", FindingStatus.PROBLEM, "the port is denied")
    assert str(finding).startswith("[problem] 2. inbound")
    assert json.loads(json.dumps(finding.to_dict()))["status"] == "problem"
    assert CheckStatus.PASS.finding_word == "ok"
    assert CheckStatus.UNKNOWN.finding_word == "unknown"
