"""Build the agent's prompt from an issue and its thread (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_BODY = 20000
ASK_PREAMBLE = (
    "Answer the question below about this repository. Do not change any file: "
    "the workspace is read-only. Your final answer is posted as a comment.\n"
)
MAX_COMMENT = 4000
MAX_PROMPT = 60000

RULES = """\
Working rules:
- Work only inside the current directory, which is the repository.
  Do not read or write files outside it.
- Do not run git commit, git push or create branches: the changes you leave
  in the files are committed and pushed for you.
- Keep the change focused on the request. Do not reformat or rewrite unrelated code.
- If the request is unclear or cannot be done, change nothing and explain why in your final answer.
- Finish with a short summary of what you changed and why."""


@dataclass(frozen=True)
class ThreadComment:
    author: str
    body: str


@dataclass(frozen=True)
class CodeLocation:
    """The diff lines a review comment was written on."""

    path: str
    start_line: int | None
    line: int | None
    diff_hunk: str

    def describe(self) -> str:
        if self.line is None:
            return f"`{self.path}` (a line that is no longer in the diff)"
        if self.start_line is not None and self.start_line != self.line:
            return f"`{self.path}`, lines {self.start_line}-{self.line}"
        return f"`{self.path}`, line {self.line}"


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "\n[… cut]"


def _request(
    repository: str,
    number: int,
    kind: str,
    instructions: str,
    is_pull_request: bool,
    task_limit: int = MAX_BODY,
) -> list[str]:
    """What is asked: the task given, or the issue to resolve; on a pull request, its branch."""
    parts: list[str] = []
    if instructions.strip():
        parts += ["Your task:", _clip(instructions, task_limit), ""]
        parts.append(f"Context: {kind} #{number} of {repository}.")
    else:
        parts.append(f"Resolve {kind} #{number} of the repository {repository}.")
    if is_pull_request:
        parts.append(
            "You are working on the pull request's branch: change its code as asked; "
            "your changes are added to the pull request as a new commit."
        )
    return parts


def _review_location(location: CodeLocation) -> list[str]:
    """The diff lines a review comment was written on, with their hunk."""
    return [
        "",
        f"The request was written as a review comment on {location.describe()}.",
        "The diff hunk it refers to:",
        "```diff",
        _clip(location.diff_hunk, MAX_COMMENT),
        "```",
    ]


def _thread(title: str, body: str, comments: Sequence[ThreadComment]) -> list[str]:
    """The issue's title and description, then its comments, oldest first."""
    parts = [
        "",
        f"Title: {' '.join(title.split())}",
        "",
        "Description:",
        _clip(body, MAX_BODY) or "(empty)",
    ]
    if comments:
        parts += ["", "Comments on the thread, oldest first:"]
        for comment in comments:
            parts += [f"--- @{comment.author} wrote:", _clip(comment.body, MAX_COMMENT)]
    return parts


def _repo_settings(
    repo_instructions: str, test_command: str, protected: Sequence[str]
) -> list[str]:
    """The repository's own settings: instructions, the test command, the protected paths."""
    parts: list[str] = []
    if repo_instructions.strip():
        parts += [
            "",
            "Instructions from the repository's maintainers:",
            _clip(repo_instructions, MAX_BODY),
        ]
    if test_command.strip():
        parts += [
            "",
            f"When you finish, the command `{test_command.strip()}` is run to test your change; "
            "if it fails you will be shown its output and asked to fix the problem.",
        ]
    if protected:
        parts += [
            "",
            "Do not change these protected paths; changes to them are undone: "
            + ", ".join(f"`{p}`" for p in protected[:50]),
        ]
    return parts


def build_prompt(
    *,
    repository: str,
    number: int,
    title: str,
    body: str,
    comments: Sequence[ThreadComment] = (),
    instructions: str = "",
    is_pull_request: bool = False,
    location: CodeLocation | None = None,
    repo_instructions: str = "",
    test_command: str = "",
    protected: Sequence[str] = (),
    ask: bool = False,
    task_limit: int = MAX_BODY,
) -> str:
    """The full prompt: request first, then the issue and its thread as context, then rules.

    `task_limit`: the characters of `instructions` kept (a follow-up's task,
    with its checks' output and logs, may be longer than a person's request).

    The repository's own settings (`.github/autocode.yml`) come last before the
    rules: the maintainers' instructions, the command the change is tested
    with, and the paths whose changes are undone.
    """
    kind = "pull request" if is_pull_request else "issue"
    parts = _request(repository, number, kind, instructions, is_pull_request, task_limit)
    if location is not None:
        parts += _review_location(location)
    parts += _thread(title, body, comments)
    parts += _repo_settings(repo_instructions, test_command, protected)
    parts += ["", RULES]
    if ask:  # an answer only: the workspace is mounted read-only, nothing is pushed
        parts.insert(0, ASK_PREAMBLE)
    prompt = "\n".join(parts)
    if len(prompt) > MAX_PROMPT:
        prompt = prompt[: MAX_PROMPT - len(RULES) - 20] + "\n[… cut]\n\n" + RULES
    return prompt


def ticket_prompt(
    *, repository: str, title: str, description: str, ticket_type: str, priority: str
) -> str:
    """The agent's prompt for a ticket that has no GitHub issue behind it."""
    body = description.strip()
    if len(body) > MAX_BODY:
        body = body[:MAX_BODY] + "\n[… cut]"
    return "\n".join(
        [
            f"Work on this {ticket_type} ticket (priority: {priority}) "
            f"in the repository {repository}.",
            "",
            f"Title: {' '.join(title.split())}",
            "",
            "Description:",
            body or "(empty)",
            "",
            RULES,
        ]
    )
