"""Shared test helpers (reference implementations, tiny models, tiny configs); importable from
every test folder because `tests/conftest.py` puts `tests/` on the path."""
