"""One fresh, locked-down container per run, always removed afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import DockerUnavailable, RunnerError, RunnerImageMissing
from .client import has_started, named, once, sdk_client
from .container import follow, pump, remove, wind_up
from .egress import Egress, bridge_gateway, resolv_conf
from .images import Images
from .recipe import BuildRecipe, Prepared
from .spec import LABEL, RELAY_HOST, STORE_LABEL, WORKER_LABEL, ContainerExit, ContainerSpec


def store_key(database_url: str) -> str:
    """Names a ticket store on container labels without revealing its URL."""
    return hashlib.sha256(database_url.encode()).hexdigest()[:16]


def container_user() -> str:
    """The uid:gid the agent runs as: the host's own, or 1000 when the host runs as root."""
    uid = os.getuid()
    if uid == 0:
        return "1000:1000"
    return f"{uid}:{os.getgid()}"


class DockerRunner:
    """Runs agent containers on one Docker engine (DOCKER_HOST or the local socket)."""

    def __init__(
        self, base_url: str = "", *, tls_verify: bool = False, cert_path: str = ""
    ) -> None:
        self.base_url = base_url
        self.tls_verify = tls_verify  # DOCKER_TLS_VERIFY
        self.cert_path = cert_path  # DOCKER_CERT_PATH
        self.active = 0  # agent containers this runner has going now (a metric)
        self._client: Any = None
        self._lock = threading.Lock()
        # the host-side LLM proxy the agents on this engine use (set by the composition root)
        self._egress: Egress | None = None

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import docker
                import docker.errors

                try:
                    self._client = sdk_client(self._environment())
                except docker.errors.DockerException as exc:
                    raise DockerUnavailable(f"the Docker engine cannot be reached: {exc}") from exc
            return self._client

    @classmethod
    def of(cls, settings: Settings) -> DockerRunner:
        """The engine the settings name (DOCKER_HOST, with its TLS settings)."""
        return cls(
            settings.docker_host,
            tls_verify=settings.docker_tls_verify,
            cert_path=settings.docker_cert_path,
        )

    def _environment(self) -> dict[str, str]:
        """What the Docker SDK reads, as the Docker CLI would (never this process's own)."""
        env = {"DOCKER_HOST": self.base_url}  # "": the local socket
        if self.tls_verify:
            env["DOCKER_TLS_VERIFY"] = "1"
        if self.cert_path:
            env["DOCKER_CERT_PATH"] = self.cert_path
        return env

    def ping(self) -> None:
        import docker.errors
        import requests

        try:
            self.client.ping()
        except (docker.errors.DockerException, requests.RequestException) as exc:
            self._forget_client()
            raise DockerUnavailable(f"the Docker engine cannot be reached: {exc}") from exc

    def _forget_client(self) -> None:
        """Drop the client and its pooled connections: they died with the engine.

        Without this, the first calls after the engine is back reuse dead
        keep-alive connections and fail with "connection reset".
        """
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    def image_labels(self, image: str) -> dict[str, str] | None:
        """The image's labels, or None when it is not present on the engine."""
        import docker.errors

        try:
            found = self.client.images.get(image)
        except docker.errors.ImageNotFound:
            return None
        except docker.errors.DockerException as exc:
            raise DockerUnavailable(f"the Docker engine cannot be reached: {exc}") from exc
        return dict(found.labels or {})

    def running_for(self, ticket_id: int) -> list[str]:
        containers = self.client.containers.list(
            all=True, filters={"label": f"{LABEL}={ticket_id}"}
        )
        return [c.id for c in containers]

    def remove_orphans(self, store: str, keep: Callable[[int, str], bool]) -> list[int]:
        """Remove the agent containers of `store` that `keep(ticket_id, worker_id)` disowns.

        Only containers labelled with this store are looked at: other bots
        sharing the engine with another database are left alone.
        """
        import docker.errors
        import requests

        removed: list[int] = []
        try:
            containers = self.client.containers.list(
                all=True, filters={"label": [LABEL, f"{STORE_LABEL}={store}"]}
            )
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise DockerUnavailable(f"the Docker engine cannot be reached: {exc}") from exc
        for container in containers:
            labels = container.labels or {}
            try:
                ticket = int(labels.get(LABEL, "0"))
            except ValueError:
                ticket = 0
            if keep(ticket, str(labels.get(WORKER_LABEL, ""))):
                continue
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
                removed.append(ticket)
        return removed

    async def run(
        self,
        spec: ContainerSpec,
        on_line: Callable[[str], None],
        cancel: asyncio.Event,
        activity: Callable[[], float] | None = None,
    ) -> ContainerExit:
        """Run the container to its end, a timeout, idleness or cancellation; remove it.

        Whatever happens, `spec.on_removed` runs after: the container, and with
        it everything that could use the run's LLM capability, is gone.
        """
        try:
            return await self._run(spec, on_line, cancel, activity)
        finally:
            if spec.on_removed is not None:
                spec.on_removed()

    async def _run(
        self,
        spec: ContainerSpec,
        on_line: Callable[[str], None],
        cancel: asyncio.Event,
        activity: Callable[[], float] | None = None,
    ) -> ContainerExit:
        import docker.errors
        import requests

        loop = asyncio.get_running_loop()
        started = time.monotonic()
        container = await self._created(spec)
        result = ContainerExit(exit_code=None)
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        self.active += 1
        try:
            # a start whose answer was lost is not repeated once it happened (a short
            # command may have run and exited already: starting it again would rerun it)
            await asyncio.to_thread(once, container.start, lambda: has_started(container))
            result.start_seconds = time.monotonic() - started
            reader = threading.Thread(
                target=pump, args=(container, loop, lines), daemon=True, name="agent-logs"
            )
            reader.start()
            await follow(spec, lines, on_line, cancel, activity, started, result)
            await wind_up(container, result, started)
            # drain what the reader still holds
            while not lines.empty():
                line = lines.get_nowait()
                if line is not None:
                    on_line(line)
        except (docker.errors.DockerException, requests.RequestException) as exc:
            # the engine went away mid-run (its socket closed, dockerd stopped)
            raise DockerUnavailable(f"the Docker engine failed during the run: {exc}") from exc
        finally:
            self.active -= 1
            await asyncio.to_thread(remove, container)
            result.seconds = time.monotonic() - started
        return result

    async def _created(self, spec: ContainerSpec) -> Any:
        """The run's container, created; the engine's refusals as the bot's errors."""
        import docker.errors
        import requests

        try:
            return await asyncio.to_thread(self._create, spec)
        except docker.errors.ImageNotFound as exc:
            raise RunnerImageMissing(
                f"the runner image {spec.image} is missing: build it with `autocode runner build`"
            ) from exc
        except docker.errors.APIError as exc:
            if "No such image" in str(exc):
                raise RunnerImageMissing(
                    f"the runner image {spec.image} is missing: "
                    "build it with `autocode runner build`"
                ) from exc
            if "runtime" in str(exc) and spec.runtime:
                raise RunnerError(
                    f"the Docker engine cannot run containers under {spec.runtime} "
                    f"(AUTOCODE_AGENT_RUNTIME): {exc.explanation or exc}; register it in the "
                    "engine's daemon.json (`autocode doctor` says how) or unset the setting"
                ) from exc
            raise RunnerError(f"the agent container could not be created: {exc}") from exc
        except (docker.errors.DockerException, requests.RequestException) as exc:
            raise DockerUnavailable(f"the Docker engine cannot be reached: {exc}") from exc

    def _create(self, spec: ContainerSpec) -> Any:
        kwargs = spec.create_kwargs()
        image = kwargs.pop("image")
        command = kwargs.pop("command")
        kwargs.pop("detach")
        if spec.network == "internal":
            # the agents' network (made on first use); the relay to the proxy found by name
            self.egress.network()
            # the resolver file beside the workspace: in the work directory, which the engine
            # sees at the same path (it mounts the workspace from there)
            resolv = resolv_conf(spec.workspace.parent)
            kwargs["volumes"][str(resolv)] = {"bind": "/etc/resolv.conf", "mode": "ro"}
            if spec.llm_relay:
                relay = self.egress.relay(spec.llm_relay, image, spec.runtime)
                kwargs["extra_hosts"] = {RELAY_HOST: relay}
        # named, so that a create whose answer was lost (a dropped connection) is found again
        name = f"autocode-{spec.ticket_id}-{spec.role}-{secrets.token_hex(4)}"
        return once(
            lambda: self.client.containers.create(image, command, name=name, **kwargs),
            lambda: named(self.client, name),
        )

    def prepare_image(
        self,
        repository: str,
        runner_image: str,
        *,
        image: str = "",
        build: BuildRecipe | None = None,
        work_tree: Path | None = None,
        on_line: Callable[[str], None] = lambda _line: None,
        network: str = "bridge",
        timeout: float = 600.0,
    ) -> Prepared:
        """The agent image derived from the repository's own (runner/images.py), with the
        opencode and entrypoint of `runner_image`."""
        from .image import OPENCODE_VERSION

        images = Images(
            self.client, runner_image, OPENCODE_VERSION, network=network, timeout=timeout
        )
        return images.prepare(
            repository, image=image, build=build, work_tree=work_tree, on_line=on_line
        )

    @property
    def egress(self) -> Egress:
        """The `internal` network's pieces on this engine (runner/egress.py)."""
        if self._egress is None:
            self._egress = Egress(self.client)
        return self._egress

    def bridge_gateway(self) -> str:
        """The host's address on the engine's default bridge (where `bridge` agents find it)."""
        import docker.errors

        try:
            return bridge_gateway(self.client)
        except docker.errors.DockerException as exc:
            raise DockerUnavailable(f"the Docker engine cannot be reached: {exc}") from exc
