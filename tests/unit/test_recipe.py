"""The derived image's recipe (pure text) and the runner image's musl build of opencode.

What runs for real is in tests/integration/test_images.py (Debian bases: the
glibc build, git and CA certificates installed with apt-get) and
tests/integration/test_musl.py (a musl-only base: the musl build picked, found
by the base's `ldd` and, without one, by musl's loader). No Alpine image and
so no apk can be had here: the apk path is checked on the recipe's text.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
from pathlib import Path

import pytest

from bot.errors import RunnerError
from bot.runner import image, images, recipe

RUNNER = "autocode-runner:latest"
BASE_ID = "sha256:" + "ab" * 32


def text(version: str = "1.2.3") -> str:
    return recipe.dockerfile(base_id=BASE_ID, base="alpine:3.20", runner_image=RUNNER,
                             opencode_version=version, repository="octo/app")  # fmt: skip


def stages(dockerfile: str) -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), one list per stage."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    found: list[list[str]] = []
    for line in joined.splitlines():
        if line.startswith("FROM "):
            found.append([])
        if line:
            found[-1].append(line)
    return found


def test_the_recipe_version_was_bumped_so_old_derived_images_are_not_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert recipe.RECIPE_VERSION != "1"
    now = recipe.derived_tag(BASE_ID, "1.2.3")
    monkeypatch.setattr(recipe, "RECIPE_VERSION", "1")
    assert recipe.derived_tag(BASE_ID, "1.2.3") != now
    assert now.startswith("autocode-derived:")


def test_the_c_library_is_found_on_the_base_before_anything_is_copied() -> None:
    base, pick, final = stages(text())
    assert base[0] == f"FROM {BASE_ID} AS autocode-base" and base[1] == "USER 0"
    detect = base[2]
    # musl when the base's ldd says so (Alpine's does), or its loader without glibc's
    assert "ldd --version 2>&1 | grep -qi musl" in detect
    assert "ls /lib/ld-musl-*" in detect and "! ls /lib/ld-linux* /lib64/ld-linux*" in detect
    assert f'echo "{recipe.LIBC_FOUND} $libc"' in detect
    assert detect.endswith(f'echo "$libc" > {recipe.LIBC_FILE}')
    assert pick[0] == f"FROM {RUNNER} AS autocode-opencode"
    assert f"COPY --from=autocode-base {recipe.LIBC_FILE} {recipe.LIBC_FILE}" in pick
    assert final[0] == "FROM autocode-base"  # the found library stays in the derived image


def test_the_runner_stage_keeps_only_the_build_the_base_runs() -> None:
    _, pick, final = stages(text("1.2.3"))
    keep = pick[-1]
    assert keep.startswith(f'RUN if [ "$(cat {recipe.LIBC_FILE})" = musl ]; then')
    # musl: the compressed build unpacked, the glibc one deleted; or a clear stop without it
    assert f"gzip -d {recipe.MUSL_DIR}/opencode.gz" in keep
    assert "rm /usr/local/bin/opencode" in keep
    assert f"echo '{recipe.NO_MUSL_BUILD} 1.2.3' >&2; exit 4" in keep
    # glibc: the musl build deleted
    assert keep.endswith(f"else rm -rf {recipe.MUSL_DIR}; fi")
    # one of the two is left: both patterns into /usr/local/bin, the missing one copies nothing
    assert final[1] == ("COPY --from=autocode-opencode /usr/local/bin/opencode* "
                        f"{recipe.MUSL_DIR}/opencode* /usr/local/bin/")  # fmt: skip
    assert final[2] == (
        f"COPY --from={RUNNER} /usr/local/bin/autocode-agent /usr/local/bin/autocode-agent"
    )


def test_on_musl_libstdcxx_is_installed_with_apk_where_missing() -> None:
    *_, final = stages(text())
    prepare = next(line for line in final if line.startswith('RUN need=""'))
    assert (f'if [ "$(cat {recipe.LIBC_FILE})" = musl ] && ! [ -e /usr/lib/libstdc++.so.6 ]'
            in prepare)  # fmt: skip
    assert 'need="$need libstdc++"' in prepare
    assert "elif command -v apk >/dev/null 2>&1; then apk add --no-cache $need;" in prepare
    assert "adduser -D -u 1000 -h /home/agent -s /bin/sh agent" in prepare  # busybox's
    assert f'echo "{recipe.NO_PACKAGE_MANAGER}$need: the image has neither apt-get nor apk"' in (
        prepare
    )
    # git, CA certificates and libstdc++ are looked for before any install
    assert prepare.index("libstdc++") < prepare.index('if [ -n "$need" ]')


def test_opencode_must_say_its_version_and_neither_build_running_is_the_last_word() -> None:
    *_, final = stages(text("1.2.3"))
    check = next(line for line in final if "opencode --version" in line)
    assert check.startswith('RUN said="$(/usr/local/bin/opencode --version 2>&1)"; ')
    assert 'test "$said" = 1.2.3 ||' in check
    assert recipe.NO_OPENCODE in check and "built for glibc and musl" in check
    assert "needs glibc" not in text()
    assert final.index(check) > final.index(next(x for x in final if x.startswith("RUN need")))
    assert final[-2:] == ['ENTRYPOINT ["/usr/local/bin/autocode-agent"]',
                          'CMD ["opencode", "--version"]']  # fmt: skip


def test_every_run_step_is_valid_shell() -> None:
    for stage in stages(text("1.2.3; rm -rf /")):  # the version is quoted where it goes
        for line in stage:
            if line.startswith("RUN "):
                done = subprocess.run(["sh", "-n", "-c", line[4:]], capture_output=True,
                                      text=True, check=False)  # fmt: skip
                assert done.returncode == 0, (line, done.stderr)


def test_the_build_errors_name_the_fix() -> None:
    error = images._failed("the agent image from alpine:3.20",
                           ["Step 7/18 : RUN …", f"{recipe.NO_MUSL_BUILD} 1.2.3"])  # fmt: skip
    assert "musl" in error.message and "autocode runner build" in error.message
    error = images._failed("x", [f"{recipe.NO_OPENCODE} (its C library is glibc …): boom"])
    assert "Neither of opencode's builds" in error.message
    assert "Debian, Ubuntu or Alpine" in error.message


# -- the runner image's musl build (image.py) ---------------------------------------------


def npm_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "node_modules"
    monkeypatch.setattr(image, "_npm_root", lambda: root)
    monkeypatch.setattr(image.platform, "machine", lambda: "x86_64")
    return root


def install(root: Path, package: str, version: str, content: bytes) -> Path:
    folder = root / "opencode-ai" / "node_modules" / package
    (folder / "bin").mkdir(parents=True)
    (folder / "package.json").write_text(json.dumps({"name": package, "version": version}))
    (folder / "bin" / "opencode").write_bytes(content)
    return folder / "bin" / "opencode"


def test_the_musl_package_is_named_for_the_processor(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(image.platform, "machine", lambda: "aarch64")
    assert image._platform_package("musl") == "opencode-linux-arm64-musl"
    assert image._platform_package() == "opencode-linux-arm64"
    monkeypatch.setattr(image.platform, "machine", lambda: "x86_64")
    assert image._platform_package("musl") == "opencode-linux-x64-musl"


def test_an_installed_musl_build_is_taken_only_at_the_pinned_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = npm_root(tmp_path, monkeypatch)
    binary = install(root, "opencode-linux-x64-musl", "1.2.3", b"\x7fELF musl")
    assert image.find_musl_opencode("1.2.3") == binary
    assert image.find_musl_opencode("1.2.4") is None


def test_the_musl_build_goes_in_compressed_and_the_same_each_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = npm_root(tmp_path, monkeypatch)
    install(root, "opencode-linux-x64-musl", "1.2.3", b"\x7fELF musl" * 1000)
    first, second = tmp_path / "a.gz", tmp_path / "b.gz"
    assert image.musl_opencode(first, "1.2.3") and image.musl_opencode(second, "1.2.3")
    assert gzip.decompress(first.read_bytes()) == b"\x7fELF musl" * 1000
    assert first.read_bytes() == second.read_bytes()  # no time in it: the build cache holds
    assert first.stat().st_mode & 0o777 == 0o755


def test_without_a_musl_build_the_runner_image_is_built_without_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    npm_root(tmp_path, monkeypatch)  # nothing installed

    def no_such_version(dest: Path, version: str, package: str = "") -> Path:
        assert package == "opencode-linux-x64-musl"
        raise RunnerError(f"`npm pack {package}@{version}` failed: 404 No match found")

    monkeypatch.setattr(image, "fetch_opencode", no_such_version)
    assert not image.musl_opencode(tmp_path / "opencode.gz", "1.2.3")
    assert not (tmp_path / "opencode.gz").exists()
