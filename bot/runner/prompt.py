"""Build the agent's prompt from an issue and its thread (pure)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MAX_BODY = 20000
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


def _clip(text: str, limit: int) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + "\n[… cut]"


def build_prompt(
    *,
    repository: str,
    number: int,
    title: str,
    body: str,
    comments: Sequence[ThreadComment] = (),
    instructions: str = "",
    is_pull_request: bool = False,
) -> str:
    """The full prompt: request first, then the issue and its thread as context, then rules."""
    kind = "pull request" if is_pull_request else "issue"
    parts: list[str] = []
    if instructions.strip():
        parts += ["Your task:", _clip(instructions, MAX_BODY), ""]
        parts.append(f"Context: {kind} #{number} of {repository}.")
    else:
        parts.append(f"Resolve {kind} #{number} of the repository {repository}.")
    parts += [
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
    parts += ["", RULES]
    prompt = "\n".join(parts)
    if len(prompt) > MAX_PROMPT:
        prompt = prompt[: MAX_PROMPT - len(RULES) - 20] + "\n[… cut]\n\n" + RULES
    return prompt
