"""``python -m wac_azure``: the same as the ``wac-azure`` console script."""

from __future__ import annotations

import sys

from wac_azure._cli import main

if __name__ == "__main__":
    sys.exit(main())
