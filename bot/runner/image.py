"""Build the agent image from Dockerfile.runner with the pinned opencode."""

from __future__ import annotations

import logging
import platform
import shutil
import subprocess
import tarfile
import tempfile
from importlib import resources
from pathlib import Path

from ..errors import RunnerError

log = logging.getLogger("bot.runner")

OPENCODE_VERSION = "1.18.33"
_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}


def dockerfile() -> Path:
    """Dockerfile.runner: packaged with the bot, or at the top of a source checkout."""
    packaged = resources.files("bot.runner") / "Dockerfile.runner"
    if packaged.is_file():
        return Path(str(packaged))
    source = Path(__file__).resolve().parents[2] / "Dockerfile.runner"
    if source.is_file():
        return source
    raise RunnerError("Dockerfile.runner is missing from this installation")


def _platform_package() -> str:
    arch = _ARCH.get(platform.machine().lower())
    if arch is None:
        raise RunnerError(f"no opencode build for the processor {platform.machine()}")
    return f"opencode-linux-{arch}"


def _version_of(binary: Path) -> str:
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=60, check=False
        )
    except OSError:
        return ""
    return out.stdout.strip()


def find_opencode(version: str = OPENCODE_VERSION) -> Path | None:
    """The host's opencode binary of `version` from npm's global packages, if installed."""
    npm = shutil.which("npm")
    if npm is None:
        return None
    root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, check=False)
    base = Path(root.stdout.strip())
    package = _platform_package()
    for candidate in (
        base / "opencode-ai" / "node_modules" / package / "bin" / "opencode",
        base / package / "bin" / "opencode",
    ):
        if candidate.is_file() and _version_of(candidate) == version:
            return candidate
    return None


def fetch_opencode(dest: Path, version: str = OPENCODE_VERSION) -> Path:
    """Download the pinned opencode binary with `npm pack` (npm's own registry settings)."""
    npm = shutil.which("npm")
    if npm is None:
        raise RunnerError(
            f"opencode {version} is not installed and npm is missing: install Node.js/npm, "
            f"or run `npm install -g opencode-ai@{version}`"
        )
    spec = f"{_platform_package()}@{version}"
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            [npm, "pack", spec, "--silent"], cwd=tmp, capture_output=True, text=True, check=False
        )
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            raise RunnerError(f"`npm pack {spec}` failed: {done.stderr.strip()[-500:]}")
        with tarfile.open(tarballs[0]) as archive:
            member = archive.getmember("package/bin/opencode")
            source = archive.extractfile(member)
            if source is None:
                raise RunnerError(f"{spec} holds no opencode binary")
            with source, open(dest, "wb") as out:
                shutil.copyfileobj(source, out)
    dest.chmod(0o755)
    return dest


def build_context(directory: Path, version: str = OPENCODE_VERSION) -> Path:
    """Fill `directory` with Dockerfile.runner and the opencode binary."""
    shutil.copy(dockerfile(), directory / "Dockerfile.runner")
    binary = find_opencode(version)
    if binary is not None:
        shutil.copy(binary, directory / "opencode")
    else:
        fetch_opencode(directory / "opencode", version)
    # executable in the context: Dockerfile.runner copies it as it is (no chmod layer)
    (directory / "opencode").chmod(0o755)
    return directory


def build_image(client: object, tag: str, version: str = OPENCODE_VERSION) -> str:
    """Build the runner image with the Docker SDK `client`; return its id.

    Each step of the build is logged as it starts, so a first start that builds
    the image shows its progress; a failed build raises with the log's tail.
    """
    import docker.errors

    api = client.api  # type: ignore[attr-defined]
    with tempfile.TemporaryDirectory(prefix="autocode-runner-") as tmp:
        context = build_context(Path(tmp), version)
        log.info("building runner image", extra={"image": tag, "opencode": version})
        lines: list[str] = []
        image_id = ""
        try:
            for chunk in api.build(
                path=str(context),
                dockerfile="Dockerfile.runner",
                tag=tag,
                rm=True,
                forcerm=True,
                network_mode="host",
                buildargs={"OPENCODE_VERSION": version},
                decode=True,
            ):
                if "error" in chunk:
                    tail = "\n".join(lines[-30:])
                    raise RunnerError(f"building {tag} failed: {chunk['error']}\n{tail}"[-2000:])
                image_id = str(chunk.get("aux", {}).get("ID", "")) or image_id
                line = str(chunk.get("stream", "")).strip()
                if not line:
                    continue
                lines.append(line)
                if line.startswith("Step "):
                    log.info("runner image build step", extra={"image": tag, "step": line})
                else:
                    log.debug("build: %s", line)
        except docker.errors.APIError as exc:
            raise RunnerError(f"building {tag} failed: {exc.explanation}") from exc
        if not image_id:
            image_id = str(client.images.get(tag).id)  # type: ignore[attr-defined]
        return image_id
