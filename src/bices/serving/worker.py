"""A server process of `bices serve --workers N`: uvicorn serving the app on connections
that the dispatcher hands over, rather than on a socket of its own.

The process gets one end of a Unix sequenced-packet socket (the channel). Each packet from
the dispatcher carries one accepted TCP connection as a file descriptor; the server adopts
it as if it had accepted it itself (`loop.connect_accepted_socket`), with uvicorn's own
protocol, so requests, streams, limits and graceful shutdown are uvicorn's as usual. Back
over the channel the worker reports, whenever they change (and at once when it is ready),
two numbers: how many connections it has received in all and how many it holds open, which
the dispatcher's choice of the least busy worker is made from. When the channel closes
(the dispatcher is gone), the worker shuts down.

    python -m bices.serving.worker --channel FD
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from bices.serving.channel import DRAINING, REPORT, raise_descriptor_limit

log = logging.getLogger("bices.serving")

MAX_FDS = 4  # descriptors read from one packet (the dispatcher sends one)
DRAIN_AFTER_S = 0.5  # a connection handed over while stopping: when to ask it to close


class _Watched(set[Any]):
    """uvicorn's set of open connections, telling `changed` each time one comes or goes
    (its protocols `add`, `discard` and `remove` themselves), so that the dispatcher learns
    of a closed connection at once rather than at the next tick."""

    def __init__(self, changed: Callable[[], None]) -> None:
        super().__init__()
        self._changed = changed

    def add(self, item: Any) -> None:
        super().add(item)
        self._changed()

    def discard(self, item: Any) -> None:
        super().discard(item)
        self._changed()

    def remove(self, item: Any) -> None:
        super().remove(item)
        self._changed()


class HandedServer(uvicorn.Server):
    """uvicorn with no listener: it serves the connections that arrive on `channel`."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self.server_state.connections = _Watched(self._report)
        self._channel = channel
        self._received = 0  # connections handed to this process (packets read)
        self._adopting = 0  # received, not yet taken up by a protocol
        self._reported: tuple[int, int] | None = None
        self._draining = False

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # the app's lifespan, and no socket of its own
        if self.should_exit:
            return
        loop = asyncio.get_running_loop()
        config, state, app_state = self.config, self.server_state, self.lifespan.state

        def protocol() -> asyncio.Protocol:
            # What `uvicorn.Server.startup` gives each connection it accepts itself.
            made: asyncio.Protocol = config.http_protocol_class(  # type: ignore[call-arg]
                config=config, server_state=state, app_state=app_state, _loop=loop
            )
            return made

        try:
            protocol()  # a uvicorn that builds its protocols otherwise fails here, not later
        except Exception:
            log.exception("this uvicorn's protocol cannot be built here: not serving")
            self.should_exit = True
            return
        self._protocol = protocol
        self._channel.setblocking(False)
        loop.add_reader(self._channel.fileno(), self._receive)
        self._report()  # ready: the dispatcher hands nothing to a worker before this

    def _receive(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                message, fds, flags, _ = socket.recv_fds(
                    self._channel, 16, MAX_FDS, socket.MSG_CMSG_CLOEXEC
                )
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                log.error("the dispatcher's channel failed (%s): shutting down", error)
                message, fds, flags = b"", [], 0
            if not message and not fds:
                loop.remove_reader(self._channel.fileno())
                self.should_exit = True  # the dispatcher is gone
                return
            self._received += 1
            if flags & socket.MSG_CTRUNC or not fds:
                # The kernel could not give this process the descriptor (out of them): the
                # connection is closed, and the client sees it end.
                log.error("a handed connection was lost: no descriptor left for it")
            for fd in fds:
                self._adopting += 1
                task = loop.create_task(self._adopt(socket.socket(fileno=fd)))
                self.server_state.tasks.add(task)
                task.add_done_callback(self.server_state.tasks.discard)
            self._report()

    async def _adopt(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            conn.setblocking(False)
            _, protocol = await loop.connect_accepted_socket(self._protocol, conn)
            if self._draining:
                # Handed over as this process began to stop: its first request is read by
                # then and answered, and the connection closed after it (as uvicorn does
                # to the connections it holds when it stops).
                loop.call_later(DRAIN_AFTER_S, protocol.shutdown)  # type: ignore[attr-defined]
        except OSError as error:  # the client left before it was taken up
            log.info("a handed connection could not be served: %s", error)
            conn.close()
        except Exception:
            log.exception("a handed connection could not be served")
            conn.close()
        finally:
            self._adopting -= 1
            self._report()

    def _report(self) -> None:
        if self._draining:
            return
        now = (self._received, len(self.server_state.connections) + self._adopting)
        if now == self._reported:
            return
        if self._send(REPORT.pack(*now)):
            self._reported = now

    def _send(self, packet: bytes) -> bool:
        try:
            self._channel.send(packet)
        except (BlockingIOError, InterruptedError):
            return False  # the dispatcher is behind; the next tick tries again
        except OSError:
            return False  # the dispatcher is gone; `_receive` sees the channel close
        return True

    async def on_tick(self, counter: int) -> bool:
        self._report()  # a report the channel had no room for, tried again
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # Tell the dispatcher first, and go on reading the channel meanwhile: whatever it
        # handed over before it heard is served (then closed), not dropped.
        self._draining = True
        if self._channel.fileno() != -1:
            self._send(DRAINING)
        await super().shutdown(sockets=sockets)
        if self._channel.fileno() != -1:
            asyncio.get_running_loop().remove_reader(self._channel.fileno())


def main() -> None:
    from bices.logs import uvicorn_config
    from bices.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channel", type=int, required=True, help="the channel's descriptor")
    parser.add_argument("--grace", type=float, default=3.0, help="graceful shutdown, seconds")
    args = parser.parse_args()
    channel = socket.socket(fileno=args.channel)
    logs = uvicorn_config(Settings().log_format)
    config = uvicorn.Config(
        "bices.api.app:app_from_environment",
        factory=True,
        log_level="info",
        timeout_graceful_shutdown=args.grace,
        log_config=LOGGING_CONFIG if logs is None else logs,
    )
    raise_descriptor_limit()
    with contextlib.suppress(KeyboardInterrupt):  # as in uvicorn.run: SIGINT is a stop
        HandedServer(config, channel).run()


if __name__ == "__main__":
    main()
