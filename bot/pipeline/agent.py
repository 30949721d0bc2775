"""The agent stage: one opencode container on the run's session, watched step by step.

Usage adds up over the attempts of the test loop. The token budget is
checked at every step the agent reports: past it, the container is stopped
like a cancel and `RunState.budget` says why. Provider keys stay on the
host: the container gets the LLM proxy and a capability that dies with it.
"""

from __future__ import annotations

import asyncio
import logging

from ..llm.access import AgentLLM
from ..llm.access import prepare as prepare_llm
from ..llm.host import relay_target, require_started
from ..models import RunResult, Usage
from ..repo_settings import budget_reached
from ..runner.events import Transcript
from ..runner.spec import ContainerExit, ContainerSpec
from ..workspace import Workspace
from .outcomes import plus, spent_budget
from .report import RunReport, Stage
from .spec import LLMAccess, agent_command, agent_spec, proxy_url_for_agent
from .state import RunState

log = logging.getLogger("bot.pipeline")


class AgentWatch:
    """Reads the agent's output as it comes: progress, log lines, and the budget."""

    def __init__(self, state: RunState, report: RunReport, before: Usage) -> None:
        self.state = state
        self.report = report
        self.before = before
        self.transcript = Transcript()
        self.stop = asyncio.Event()

    def on_line(self, line: str) -> None:
        event = self.transcript.feed(line)
        if event is None:
            return
        state, progress = self.state, self.state.progress
        if event.kind in ("tool", "text", "error"):
            progress.last_step = self.transcript.last_step
            progress.dirty = True
            self.report.log(event.kind, event.describe())
        if event.kind == "finish" and not state.budget:
            reached = budget_reached(state.repo, plus(self.before, self.transcript.usage))
            if reached:
                state.budget = reached
                self.report.log("error", reached)
                self.stop.set()

    def result(self, exit_: ContainerExit, usage: Usage) -> RunResult:
        transcript = self.transcript
        errors = transcript.errors
        tail = list(transcript.tail)
        if exit_.stderr_tail.strip() and (exit_.exit_code not in (0, None) or errors):
            tail += exit_.stderr_tail.strip().splitlines()[-10:]
        return RunResult(
            exit_code=exit_.exit_code,
            timed_out=exit_.timed_out,
            cancelled=exit_.cancelled,
            idle=exit_.idle,
            final_text=transcript.final_text,
            error=errors[-1] if errors else "",
            files_touched=transcript.files,
            usage=usage,
            output_tail=tail,
            last_step=transcript.last_step,
            session_id=transcript.session_id,
            seconds=exit_.seconds,
        )


class AgentStage(Stage):
    """Runs the agent for one run; `run` may be called once per attempt of the test loop."""

    async def run(self, workspace: Workspace, prompt: str, *, attempt: int = 1) -> RunResult:
        state, deps = self.state, self.deps
        session = state.session
        watch = AgentWatch(state, self.report, state.usage)
        spec = self.spec(workspace, prompt, watch)

        async def relay_cancel() -> None:
            await self.cancel.event.wait()
            watch.stop.set()

        await self.report.phase("agent", start=attempt == 1)
        relay = asyncio.create_task(relay_cancel())
        try:
            async with self.report.reporting():
                exit_ = await deps.containers.run(spec, watch.on_line, watch.stop)
        finally:
            relay.cancel()
            if session is not None and deps.sessions is not None:
                await asyncio.to_thread(deps.sessions.scrub, session)
        state.usage = plus(watch.before, watch.transcript.usage)
        if session is not None and deps.sessions is not None and watch.transcript.session_id:
            await asyncio.to_thread(deps.sessions.save, session, watch.transcript.session_id)
        elif (
            session is not None
            and session.session_id
            and exit_.exit_code not in (0, None)
            and "Session not found" in exit_.stderr_tail
        ):
            log.warning("agent session gone; starting a new one", extra={"ticket": spec.ticket_id})
            session.session_id = ""
            return await self.run(workspace, prompt, attempt=attempt)
        self._time(exit_, attempt)
        return watch.result(exit_, state.usage)

    def _time(self, exit_: ContainerExit, attempt: int) -> None:
        timings = self.state.progress.timings
        suffix = "" if attempt == 1 else f"_{attempt}"
        timings["container_start" + suffix] = exit_.start_seconds
        timings["agent" + suffix] = exit_.agent_seconds
        timings["container_remove" + suffix] = (
            exit_.seconds - exit_.start_seconds - exit_.agent_seconds
        )

    def spec(self, workspace: Workspace, prompt: str, watch: AgentWatch) -> ContainerSpec:
        """The agent's container for this run, with a fresh LLM capability."""
        deps, state = self.deps, self.state
        settings, placement = deps.settings, deps.placement
        model = state.repo.model or settings.model  # .github/autocode.yml may pick another
        session = state.session
        command = agent_command(model, session.session_id if session else "", prompt)
        llm = self._llm(workspace, watch)
        internal = settings.agent_network == "internal"
        site = state.site(workspace, placement)
        access = LLMAccess(
            env=llm.env,
            providers=llm.providers,
            config_file=llm.config_file,
            auth_file=llm.auth_file,
            relay=relay_target(llm.proxy) if internal and llm.proxy and llm.grant else "",
        )
        return agent_spec(
            settings,
            site,
            command,
            access,
            timeout=state.remaining(),
            read_only=state.ask,
            session_dir=session.data_dir if session is not None else None,
            on_removed=lambda: self._llm_done(llm),
        )

    def _llm(self, workspace: Workspace, watch: AgentWatch) -> AgentLLM:
        deps, state = self.deps, self.state
        settings, proxy = deps.settings, deps.llm
        if proxy is not None:
            require_started(proxy)
        limit = state.repo.max_tokens_per_run
        return prepare_llm(
            ticket_id=state.ticket.id,
            agent_env=dict(settings.agent_env),
            auth_path=settings.opencode_auth,
            config_path=settings.opencode_config,
            proxy=proxy,
            agent_url=proxy_url_for_agent(settings, proxy.url if proxy else ""),
            folder=workspace.root / "llm",
            owner=deps.placement.owner,
            lifetime=max(1.0, state.remaining()) + 120,
            token_budget=max(0, limit - state.usage.total) if limit else None,
            on_budget_spent=lambda used: self._budget_spent(watch, used),
        )

    def _budget_spent(self, watch: AgentWatch, used: int) -> None:
        """The proxy refused the agent's next request for the budget: the run stops its agent."""
        state = self.state
        if not state.budget:
            state.budget = spent_budget(state.repo, state.usage.total + used)
            self.report.log("error", state.budget)
        watch.stop.set()

    def _llm_done(self, llm: AgentLLM) -> None:
        """The container is gone: its capability dies; the proxy's count goes to the log."""
        used = llm.close()
        if used is None:
            return
        counts = (used.requests, used.failed, used.tokens.input, used.tokens.output)
        for index, count in enumerate(counts):
            self.state.proxied[index] += count
        self.report.log(
            "llm",
            f"{used.requests} LLM requests through the proxy ({used.failed} failed), "
            f"{used.tokens.input} input + {used.tokens.output} output tokens",
        )
