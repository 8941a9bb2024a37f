"""Conformance with real Azure: recorded ARM traffic replayed through the readers and the emulator."""
