"""The one error hierarchy of the bot: every subclass carries a sentence for people."""

from __future__ import annotations


class BotError(Exception):
    """Something went wrong in the bot."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class SettingsError(BotError):
    """The settings are incomplete or invalid."""


class SignatureError(BotError):
    """The webhook signature is missing or does not match."""


class PayloadError(BotError):
    """The webhook payload is malformed."""


class BodyTooLarge(PayloadError):
    """The request body is larger than the bot accepts."""


class RequestError(BotError):
    """An API request is invalid; the message says what to send instead."""


class StoreError(BotError):
    """The ticket store failed."""


class GitHubError(BotError):
    """A GitHub API call failed."""


class WorkspaceError(BotError):
    """A git operation on the workspace failed."""


class RunnerError(BotError):
    """The agent container could not be run."""


class RunnerImageMissing(RunnerError):
    """The runner image is missing: build it with `autocode runner build`."""


class ImageError(RunnerError):
    """The repository's image could not be pulled or built, or cannot host the agent."""

    def __init__(self, message: str, lines: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.lines = lines  # the last lines the engine printed


class DockerUnavailable(RunnerError):
    """The Docker engine cannot be reached."""


class SetupError(BotError):
    """The GitHub App could not be created: nothing was written."""
