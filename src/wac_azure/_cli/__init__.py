"""The ``wac-azure`` command: argument parsing and output only.

It uses the public API (``import wac_azure``) and, for ``--emulator`` and
``demo``, the public emulator ``wac_azure.testing``: the CLI is the one place
that wires the emulator in (the composition root).
"""

from __future__ import annotations

from wac_azure._cli.app import main

__all__ = ["main"]
