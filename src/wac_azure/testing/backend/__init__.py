"""The emulator's backend: what ARM holds and how it behaves, with no HTTP routing.

The resource store (``state``), long-running operations (``operations``), guests,
throttling, fault injection, the builders of realistic resources, the NSG evaluator,
seeding (``seed``, ``azcli``) and the request/response values every layer shares
(``wire``). It is the bottom layer: it never imports ``wac_azure.testing.routes``
or ``wac_azure.testing.fronts``.
"""
