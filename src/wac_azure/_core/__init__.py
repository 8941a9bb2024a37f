"""The pure core: no I/O, no asyncio, no Azure SDK.

Everything here is a plain function of plain data: resource IDs, access modes,
the typed VM facts model and its parsing from ARM wire JSON, the requirement
checks and their registry, NSG evaluation, rule planning, the one decision that
``enable`` and ``enable_many`` share, and the report types. It may import the
standard library and attrs, and nothing else of wac_azure outside ``_core``
(checked by import-linter, see ``pyproject.toml``).
"""
