"""Values read from the environment, each refused with a sentence naming the variable."""

from __future__ import annotations

from collections.abc import Mapping

from .errors import SettingsError


def whole(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if value < minimum:
        raise SettingsError(f"{name} must be at least {minimum}, got {value}")
    return value


def positive(environ: Mapping[str, str], name: str) -> float | None:
    raw = environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {raw!r}")
    return value


def flag(environ: Mapping[str, str], name: str, default: bool) -> bool:
    raw = environ.get(name, "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false, got {raw!r}")


def http_url(environ: Mapping[str, str], name: str, default: str) -> str:
    value = environ.get(name, "").strip() or default
    if not value.startswith(("http://", "https://")):
        raise SettingsError(f"{name} must be an http(s) URL, got {value!r}")
    return value.rstrip("/")


def one_of(environ: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first when unset)."""
    value = environ.get(name, "").strip() or choices[0]
    if value not in choices:
        raise SettingsError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


MAX_CI_FIX_ATTEMPTS = 5  # the most follow-ups any pull request may get


def ci_fix_cap(environ: Mapping[str, str]) -> int:
    """AUTOCODE_MAX_CI_FIX_ATTEMPTS: 0 (follow-ups off on this host) to 5, default 5."""
    name = "AUTOCODE_MAX_CI_FIX_ATTEMPTS"
    value = whole(environ, name, MAX_CI_FIX_ATTEMPTS)
    if value > MAX_CI_FIX_ATTEMPTS:
        raise SettingsError(f"{name} must be at most {MAX_CI_FIX_ATTEMPTS}, got {value}")
    return value
