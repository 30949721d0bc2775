"""One line of the doctor's report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """One line of the report: ok or not, what was found, and the fix when wrong."""

    name: str
    ok: bool
    detail: str
    fix: str | None = None

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        head = f"{'ok' if self.ok else 'FAIL':<4}  {self.name}: {self.detail}"
        return [head] if self.ok or not self.fix else [head, f"      fix: {self.fix}"]


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, False, detail, fix)
