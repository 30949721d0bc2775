import json

import pytest

from bot.errors import SignatureError
from bot.webhook.verify import signature, verify
from tests.paths import SIGNATURE_TEST_VECTOR

VECTOR = json.loads(SIGNATURE_TEST_VECTOR.read_text())


def test_githubs_published_test_vector() -> None:
    body = VECTOR["payload"].encode()
    assert signature(VECTOR["secret"], body) == VECTOR["X-Hub-Signature-256"]
    verify(VECTOR["secret"], body, VECTOR["X-Hub-Signature-256"])


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=" + "0" * 64,
        "sha1=d03a1bd33c9b4e8d47b4d1f4ab34cfe1b8bf5f45",  # a SHA-1 signature alone is refused
        VECTOR["signature_hex"],  # no algorithm prefix
        VECTOR["X-Hub-Signature-256"][:-1],
    ],
)
def test_refuses_missing_wrong_and_sha1_signatures(header: str | None) -> None:
    with pytest.raises(SignatureError):
        verify(VECTOR["secret"], VECTOR["payload"].encode(), header)


def test_a_changed_body_fails() -> None:
    with pytest.raises(SignatureError):
        verify(VECTOR["secret"], b"Hello, World?", VECTOR["X-Hub-Signature-256"])


def test_no_secret_configured_refuses_everything() -> None:
    with pytest.raises(SignatureError):
        verify("", b"x", signature("", b"x"))
