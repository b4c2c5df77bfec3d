"""A tiny package that the self-develop mission extends."""

__version__ = "1.3.0"


def greet(name: str) -> str:
    return f"Hello, {name}!"
