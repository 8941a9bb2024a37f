"""Fleets: ``enable_many``, ``disable_many`` and ``discover`` over many VMs.

``results`` holds the public result types, ``engine`` the run (read per
resource group, decide per batch, write per NSG, install), ``watcher`` the
install watching.
"""
