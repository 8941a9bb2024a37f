"""Conformance with Azure: recorded ARM traffic through the readers and the emulator."""
