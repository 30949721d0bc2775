"""The Docker SDK's client: the engine as the Docker CLI reaches it, steady on dropped links."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger("bot.runner")


def sdk_client(environment: dict[str, str]) -> Any:
    """The Docker SDK's client for these DOCKER_* settings, as the Docker CLI reads them.

    Over TLS, the SDK's HTTP session must not take requests' environment:
    with REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE set (common where a proxy signs
    traffic), requests would verify the engine against that bundle instead of
    DOCKER_CERT_PATH/ca.pem and refuse it.
    """
    import docker
    from docker.api.client import APIClient

    if not (environment.get("DOCKER_TLS_VERIFY") or environment.get("DOCKER_CERT_PATH")):
        return steady(docker.from_env(environment=environment, timeout=60))

    class _APIClient(APIClient):
        trust_env = property(lambda self: False, lambda self, value: None)

    class _DockerClient(docker.DockerClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.api = _APIClient(*args, **kwargs)

    return steady(_DockerClient.from_env(environment=environment, timeout=60))


def steady(client: Any) -> Any:
    """The client, retrying what a dropped keep-alive connection loses (and nothing more).

    A pooled connection the engine (or a socket proxy in front of it, or the
    network to a remote engine) closed while idle fails the next request
    sent on it with "connection reset" / "closed without response", though
    the engine is fine. The SDK retries nothing. Here a request that never
    reached the engine (connect errors) is retried, and one whose answer was
    lost is retried only when sending it twice does no harm (GET, HEAD,
    DELETE, PUT). A lost POST (create a container, start it) is the caller's
    to resolve: `DockerRunner._create` looks for the container by name.
    """
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(
        total=3,
        connect=3,
        read=2,
        status=0,
        other=0,
        redirect=0,
        allowed_methods=frozenset({"GET", "HEAD", "DELETE", "PUT", "OPTIONS"}),
        backoff_factor=0.2,
        raise_on_status=False,
        respect_retry_after_header=False,
    )
    for adapter in client.api.adapters.values():
        if isinstance(adapter, HTTPAdapter):
            adapter.max_retries = retry
    return client


def once(make: Callable[[], Any], find: Callable[[], Any]) -> Any:
    """`make()`; when its answer is lost on the way back, `find()` what it did, else do it again.

    `find` returns None when the engine did nothing.
    """
    import requests

    try:
        return make()
    except requests.ConnectionError:
        log.info("the engine's answer was lost; looking for what it did")
        found = find()
        return found if found is not None else make()


def named(client: Any, name: str) -> Any:
    """The container of that name, or None."""
    import docker.errors

    try:
        return client.containers.get(name)
    except docker.errors.NotFound:
        return None


def has_started(container: Any) -> bool | None:
    """True when the container has been started (running or exited since), else None."""
    container.reload()
    return True if container.status != "created" else None
