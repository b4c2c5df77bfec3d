"""Project-wide pytest configuration."""

# The seed trees under missions/seeds/ are copied into mission workspaces and tested there, by the
# missions; pytest must not collect their test files directly.
collect_ignore_glob = ["missions/seeds/*"]
