"""The emulator's fronts: how requests reach it from a client.

``transport`` is an in-process azure-core transport (no sockets, virtual sleeps);
``server`` serves over HTTPS on loopback with certificates from ``certs``. Fronts
import ``wac_azure.testing.backend`` (the wire values) and each other.
"""
