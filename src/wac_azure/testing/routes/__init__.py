"""The emulator's ARM routes: HTTP requests turned into backend reads and writes.

``compute``, ``network`` and ``resources`` each hold a ``ROUTES`` table of handlers;
``router`` matches paths to them, ``common`` holds the answer, paging and request-body
helpers they share, and ``context`` the ``RouteContext`` protocol: all a handler may use
of the emulator, which passes itself in. Route modules import
``wac_azure.testing.backend`` and this package's shared modules (never another route
module's private names); never ``wac_azure.testing._emulator``,
``wac_azure.testing.fronts`` or the ``wac_azure`` library.
"""
