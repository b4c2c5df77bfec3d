"""Code generated from the shipped schemas by ``python -m pytest_rustchain.schemagen``."""
