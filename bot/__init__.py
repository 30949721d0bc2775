"""Auto-Code bot: GitHub issues to pull requests with the OpenCode agent in a container."""

__version__ = "0.1.0"
