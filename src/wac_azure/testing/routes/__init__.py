"""The emulator's ARM routes: HTTP requests turned into backend reads and writes.

``compute``, ``network`` and ``resources`` each hold a ``ROUTES`` table of handlers;
``router`` matches paths to them and ``common`` holds the helpers they share. Route
modules import ``wac_azure.testing.backend`` and the shared modules of this package.
"""
