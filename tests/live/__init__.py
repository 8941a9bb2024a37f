"""Live tests against a real Azure subscription (``pytest -m live``) and their recorder."""
