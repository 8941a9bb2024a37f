"""Where the shared evidence is: ``shared/`` beside the checkout (as CI lays it), else the
workplace's copy."""

from __future__ import annotations

from pathlib import Path

_BESIDE = Path(__file__).resolve().parents[2] / "shared"
SHARED = _BESIDE if _BESIDE.is_dir() else Path("/work/shared")
ARM_FIXTURES = SHARED / "fixtures" / "arm"
RECORDINGS = SHARED / "fixtures" / "recordings"
ERRORS = SHARED / "fixtures" / "errors"
