"""Build the agent image from Dockerfile.runner with the pinned opencode.

The image carries opencode's glibc build as /usr/local/bin/opencode and, when
npm has it at the pinned version, its musl build gzip-compressed under
/usr/local/lib/autocode/musl/ (not on PATH): an agent image derived from a
musl base (Alpine) gets that one instead (recipe.py).
"""

from __future__ import annotations

import gzip
import json
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


def _platform_package(libc: str = "glibc") -> str:
    """npm's package of opencode for this processor and C library (`glibc` or `musl`)."""
    arch = _ARCH.get(platform.machine().lower())
    if arch is None:
        raise RunnerError(f"no opencode build for the processor {platform.machine()}")
    return f"opencode-linux-{arch}" + ("-musl" if libc == "musl" else "")


def _npm_root() -> Path | None:
    """npm's folder of global packages, if npm is installed."""
    npm = shutil.which("npm")
    if npm is None:
        return None
    root = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, check=False)
    return Path(root.stdout.strip())


def _installed(package: str) -> list[Path]:
    """Where npm's global install may hold `package`: under opencode-ai, or beside it."""
    base = _npm_root()
    if base is None:
        return []
    return [base / "opencode-ai" / "node_modules" / package, base / package]


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
    for folder in _installed(_platform_package()):
        candidate = folder / "bin" / "opencode"
        if candidate.is_file() and _version_of(candidate) == version:
            return candidate
    return None


def find_musl_opencode(version: str = OPENCODE_VERSION) -> Path | None:
    """The musl build of `version` among npm's global packages, if installed.

    npm installs it only on musl hosts (its package says `libc: musl`), and a
    glibc host cannot run it: its package's version is what is checked.
    """
    for folder in _installed(_platform_package("musl")):
        candidate = folder / "bin" / "opencode"
        try:
            said = json.loads((folder / "package.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if candidate.is_file() and isinstance(said, dict) and said.get("version") == version:
            return candidate
    return None


def fetch_opencode(dest: Path, version: str = OPENCODE_VERSION, package: str = "") -> Path:
    """Download the opencode binary of `version` with `npm pack` (npm's own registry
    settings): the glibc build, or the npm `package` named."""
    npm = shutil.which("npm")
    if npm is None:
        raise RunnerError(
            f"opencode {version} is not installed and npm is missing: install Node.js/npm, "
            f"or run `npm install -g opencode-ai@{version}`"
        )
    spec = f"{package or _platform_package()}@{version}"
    with tempfile.TemporaryDirectory() as tmp:
        pack = [npm, "pack", spec, "--loglevel=error"]
        done = subprocess.run(pack, cwd=tmp, capture_output=True, text=True, check=False)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            said = " ".join(done.stderr.split("\n")[:2])[:500]  # npm's code and reason
            raise RunnerError(f"`npm pack {spec}` failed: {said}")
        with tarfile.open(tarballs[0]) as archive:
            member = archive.getmember("package/bin/opencode")
            source = archive.extractfile(member)
            if source is None:
                raise RunnerError(f"{spec} holds no opencode binary")
            with source, open(dest, "wb") as out:
                shutil.copyfileobj(source, out)
    dest.chmod(0o755)
    return dest


def musl_opencode(dest: Path, version: str = OPENCODE_VERSION) -> bool:
    """opencode's musl build of `version`, gzip-compressed into `dest`; False when npm
    has none (the runner image is then built without it: musl bases are refused)."""
    package = _platform_package("musl")
    with tempfile.TemporaryDirectory() as tmp:
        binary = find_musl_opencode(version)
        if binary is None:
            try:
                binary = fetch_opencode(Path(tmp) / "opencode", version, package)
            except RunnerError as exc:
                log.warning(
                    "no musl build of opencode: the runner image cannot serve musl bases",
                    extra={"package": f"{package}@{version}", "error": str(exc)[-300:]},
                )
                return False
        # no name or time in the gzip header: the same binary gives the same file (and
        # the engine's build cache its layer)
        with (
            open(binary, "rb") as source,
            open(dest, "wb") as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out,
        ):
            shutil.copyfileobj(source, out, 1 << 20)
    dest.chmod(0o755)
    return True


def build_context(directory: Path, version: str = OPENCODE_VERSION) -> Path:
    """Fill `directory` with Dockerfile.runner, the opencode binary and, in `musl/`,
    its musl build when there is one."""
    shutil.copy(dockerfile(), directory / "Dockerfile.runner")
    binary = find_opencode(version)
    if binary is not None:
        shutil.copy(binary, directory / "opencode")
    else:
        fetch_opencode(directory / "opencode", version)
    # executable in the context: Dockerfile.runner copies it as it is (no chmod layer)
    (directory / "opencode").chmod(0o755)
    (directory / "musl").mkdir()
    musl_opencode(directory / "musl" / "opencode.gz", version)
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
        musl = version if (context / "musl" / "opencode.gz").is_file() else ""
        log.info("building runner image", extra={"image": tag, "opencode": version, "musl": musl})
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
                buildargs={"OPENCODE_VERSION": version, "OPENCODE_MUSL": musl},
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
