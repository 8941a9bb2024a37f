"""Fleets: ``enable_many``, ``disable_many`` and ``discover`` over many VMs.

``results`` holds the public result types; ``state`` what a run keeps per VM
and per NSG; ``run`` the run and one subscription's reads; ``rules`` the rule
writes per NSG; ``watcher`` the install watching; ``engine`` enable and
disable on top of them, and the public functions.
"""
