"""What users call: ``enable``, ``disable``, ``diagnose`` and the fleet runs.

Workflows read through ``_azure``, decide with ``_core`` (one decision for one
VM and for many) and write through ``_azure``. Nothing below imports them.
"""
