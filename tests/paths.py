"""Where the shared material lives: beside the repository, in ../shared."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
PAYLOADS = SHARED / "github" / "payloads"
REST_EXAMPLES = SHARED / "github" / "rest-examples"
