"""What a run shows while it runs: its comment and its check run's steps (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from .text import CHECK_NAME, duration, marker

PHASES = ("queued", "preparing", "agent", "testing", "pushing", "done")
PHASE_LABELS = {
    "queued": "Queued",
    "preparing": "Preparing the workspace",
    "agent": "Agent working",
    "testing": "Running the tests",
    "pushing": "Pushing the branch",
    "done": "Done",
}


def progress_comment(
    ticket_id: int,
    phase: str,
    elapsed: float,
    last_step: str = "",
    details_url: str = "",
    *,
    attempts: Sequence[str] = (),
    with_tests: bool = False,
    why: str = "",
) -> str:
    """The run's one comment while it runs; with tests, each attempt under their step.

    `why`: what started a follow-up of the bot's own pull request, in words.
    """
    lines = [marker(ticket_id), f"**{CHECK_NAME}** is working on this · {duration(elapsed)}", ""]
    if why:
        lines += [f"Started because {why}.", ""]
    reached = PHASES.index(phase) if phase in PHASES else 0
    for index, name in enumerate(PHASES[:-1]):
        if name == "testing" and not with_tests:
            continue
        if index < reached:
            lines.append(f"- [x] {PHASE_LABELS[name]}")
        elif index == reached:
            step = f" — {last_step}" if last_step and name == "agent" else ""
            lines.append(f"- [ ] **{PHASE_LABELS[name]}**{step} ⏳")
        else:
            lines.append(f"- [ ] {PHASE_LABELS[name]}")
        if name == "testing":
            lines += [f"  - {a}" for a in attempts]
    if details_url:
        lines += ["", f"[Details]({details_url})"]
    return "\n".join(lines)


def progress_output(
    phase: str, elapsed: float, last_step: str = "", *, attempts: Sequence[str] = ()
) -> dict[str, str]:
    """The `output` of the check run while it runs: the same steps as the comment."""
    label = PHASE_LABELS.get(phase, phase)
    text = f"{label} · {duration(elapsed)}"
    if last_step:
        text += f"\n\nLatest step: {last_step}"
    if attempts:
        text += "\n\n**Tests**\n" + "\n".join(f"- {a}" for a in attempts)
    return {"title": label, "summary": text}
