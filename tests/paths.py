"""Where the tests' material lives: inside the repository, in tests/data/.

tests/data/github/ holds copies of GitHub's published examples (webhook
payloads, REST responses, the signature test vector); see its README.md.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
GITHUB = DATA / "github"
PAYLOADS = GITHUB / "payloads"
REST_EXAMPLES = GITHUB / "rest-examples"
SIGNATURE_TEST_VECTOR = GITHUB / "signature_test_vector.json"
