"""The emulator's fronts: how a client's requests reach it.

``transport`` is an in-process azure-core transport (no sockets, virtual sleeps);
``server`` serves over HTTPS on loopback with certificates from ``certs``. Both turn what
they receive into a ``backend.wire.EmuRequest`` and hand it to the ``EmulatorHost``
(``host``) they were given: the emulator, which passes itself in. Fronts import
``wac_azure.testing.backend`` (the wire values), one another and public names of the
top-level ``wac_azure`` package; never ``wac_azure.testing._emulator`` or
``wac_azure.testing.routes``.
"""
