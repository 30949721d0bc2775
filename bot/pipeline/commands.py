"""The repository's own commands: setup before the agent, and the test loop's tests.

Each runs in a fresh container like the agent's, minus the agent
(`spec.command_spec`). Setup's new files are kept out of commits; the
tests' leftovers are undone before the agent sees the workspace again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Sequence

from ..github.render import Outcome
from ..models import RunResult
from ..runner.spec import ContainerExit
from ..testloop import TestAttempt, tail
from ..workspace import Workspace
from .outcomes import setup_failed, tests_stopped
from .report import Stage
from .spec import command_spec

log = logging.getLogger("bot.pipeline")


class Commands(Stage):
    """Setup and test commands of one run."""

    async def _run(
        self, workspace: Workspace, commands: Sequence[str], role: str
    ) -> tuple[ContainerExit, str]:
        """Run shell commands; the exit and the end of the combined output."""
        deps, state = self.deps, self.state
        site = state.site(workspace, deps.placement)
        spec = command_spec(
            deps.settings, state.repo, site, commands, role, remaining=state.remaining()
        )
        lines: deque[str] = deque(maxlen=400)
        async with self.report.reporting():
            exit_ = await deps.containers.run(
                spec, lambda line: lines.append(line[:2000]), self.cancel.event
            )
        return exit_, tail("\n".join(lines), lines=400, chars=60000)

    async def setup(self, workspace: Workspace) -> Outcome | None:
        """The settings' setup commands, before the agent; the outcome when they fail."""
        state = self.state
        repo, progress = state.repo, state.progress
        progress.last_step = f"setup: {repo.setup[0]}"
        await self.report.show()
        mark = time.monotonic()
        exit_, output = await self._run(workspace, list(repo.setup), "setup")
        progress.timings["setup"] = time.monotonic() - mark
        progress.last_step = ""
        if exit_.cancelled:
            return tests_stopped(exit_, repo, out_of_time=False, cancelled_by=self.cancel.by)
        if exit_.exit_code == 0 and not exit_.timed_out:
            kept_out = await asyncio.to_thread(workspace.exclude_untracked)
            self.report.log(
                "phase",
                f"setup done in {exit_.agent_seconds:.1f}s; "
                f"{len(kept_out)} new paths kept out of commits",
            )
            return None
        return setup_failed(exit_, output, repo, out_of_time=state.remaining() <= 0)

    async def test(self, workspace: Workspace, number: int) -> TestAttempt | Outcome:
        """One run of the test command on the agent's change; an outcome if the run ends."""
        state = self.state
        repo, progress = state.repo, state.progress
        state.testing = number
        await self.report.phase("testing")
        mark = time.monotonic()
        exit_, output = await self._run(workspace, [repo.test], "test")
        restored = await asyncio.to_thread(workspace.reset_to_index)  # tests' files stay out
        if restored:
            await asyncio.to_thread(workspace.hand_to_agent, *self.deps.placement.owner, restored)
        attempt = TestAttempt(
            number=number,
            passed=exit_.exit_code == 0 and not exit_.timed_out and not exit_.cancelled,
            exit_code=exit_.exit_code,
            timed_out=exit_.timed_out,
            seconds=exit_.agent_seconds,
            overhead=exit_.seconds - exit_.agent_seconds,
            output=output,
        )
        progress.timings[f"test_{number}"] = exit_.agent_seconds
        progress.timings[f"test_{number}_overhead"] = exit_.seconds - exit_.agent_seconds
        state.attempts.append(attempt)
        state.testing = 0
        self.report.log("test", attempt.describe(repo.max_attempts))
        log.info("test attempt", extra={
            "ticket": state.ticket.id, "attempt": number, "passed": attempt.passed,
            "exit_code": exit_.exit_code, "seconds": round(exit_.agent_seconds, 3),
        })  # fmt: skip
        stopped = tests_stopped(
            exit_,
            repo,
            out_of_time=state.remaining() <= 0,
            cancelled_by=self.cancel.by,
            **state.common(RunResult(exit_code=0, usage=state.usage), self.report.now()),
        )
        if stopped is not None:
            return stopped
        progress.timings[f"test_{number}_wall"] = time.monotonic() - mark
        await self.report.show()
        return attempt
