"""Project-wide pytest configuration: the mission marks used in missions/ are registered in pyproject.toml."""
