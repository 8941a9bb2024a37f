"""Everything that talks to Azure Resource Manager.

The session and its clients, error translation, retries, pacing, redaction,
the readers that turn resources into :class:`~wac_azure.VmFacts`, rule writes,
the extension, Run Command (guest scripts) and the TLS probe. It may import
``_core`` and the Azure SDKs, never ``_workflows`` or ``_cli``.
"""
