"""The emulator's backend: what ARM holds and how it behaves, without HTTP routing.

The resource store and ARM's errors (``state``), long-running operations
(``operations``), the VMs' runtime records and guests (``runtime``, ``guest``), the
network path of a VM (``netpath``, judged by the emulator's own ``nsgeval``),
throttling, fault injection, the builders of realistic resources, seeding (``seed``,
``azcli``) and the request/response values every layer shares (``wire``). It is the
bottom layer: its modules import one another, the standard library and third-party
packages only; never ``wac_azure.testing.routes``, ``wac_azure.testing.fronts``,
``wac_azure.testing._emulator`` or the ``wac_azure`` library.
"""
