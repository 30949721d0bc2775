"""A cuttable link to the real Docker engine: a unix socket that forwards to it.

The bot is given `DOCKER_HOST=unix://<link.path>`. `cut()` closes the socket
and every open connection, so for the bot the engine is gone (connection
refused, streams broken) exactly as when dockerd stops; `restore()` listens
again on the same path. `lose()` drops the answer to one request, as a
connection closed under a request does. The engine itself and its
containers are untouched, so other users of the machine's engine are not
disturbed.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from pathlib import Path
from types import TracebackType

ENGINE = "/var/run/docker.sock"


class DockerLink:
    def __init__(self, path: Path, engine: str = ENGINE) -> None:
        self.path = path
        self.engine = engine
        self._lock = threading.Lock()
        self._server: socket.socket | None = None
        self._open: set[socket.socket] = set()
        self._losing: list[tuple[bytes, bool]] = []  # (request line part, forward it)
        self._muted: set[socket.socket] = set()  # clients whose next answer is dropped

    @property
    def url(self) -> str:
        return f"unix://{self.path}"

    def restore(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(self.path))
        server.listen(64)
        with self._lock:
            self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def lose(self, request: bytes, *, forward: bool) -> None:
        """The next request whose first line holds `request` gets no answer: its connection closes.

        With `forward` the engine still gets it and acts on it (the answer
        is lost on the way back), as when a connection the engine closed
        while idle is reused, or a proxy in between gives up; without, the
        engine never sees it.
        """
        with self._lock:
            self._losing.append((request, forward))

    def pending(self) -> list[bytes]:
        """The requests `lose()` still waits for."""
        with self._lock:
            return [rule[0] for rule in self._losing]

    def cut(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            conns, self._open = self._open, set()
        if server is not None:
            server.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # cut
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                upstream.connect(self.engine)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._server is not server:
                    client.close()
                    upstream.close()
                    return
                self._open |= {client, upstream}
            threading.Thread(target=self._ask, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._answer, args=(upstream, client), daemon=True).start()

    def _losing_now(self, data: bytes) -> bool | None:
        """Whether this request's answer is to be lost: None (no), True (forwarded), False."""
        line = data.split(b"\r\n", 1)[0]
        with self._lock:
            for rule in self._losing:
                if rule[0] in line:
                    self._losing.remove(rule)
                    return rule[1]
        return None

    def _ask(self, client: socket.socket, upstream: socket.socket) -> None:
        self._pump(client, upstream, ask=True)

    def _answer(self, upstream: socket.socket, client: socket.socket) -> None:
        self._pump(upstream, client, ask=False)

    def _pump(self, source: socket.socket, sink: socket.socket, *, ask: bool) -> None:
        try:
            while data := source.recv(65536):
                if ask and (forward := self._losing_now(data)) is not None:
                    if forward:
                        with self._lock:
                            self._muted.add(source)
                    else:
                        self._drop(source, sink)
                        return
                if not ask and sink in self._muted:
                    self._drop(sink, source)  # the engine answered: nobody hears it
                    return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)

    def _drop(self, client: socket.socket, upstream: socket.socket) -> None:
        with self._lock:
            self._muted.discard(client)
            self._open -= {client, upstream}
        for conn in (client, upstream):
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def __enter__(self) -> DockerLink:
        self.restore()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cut()
