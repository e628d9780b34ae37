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
import logging
import socket
import struct

import uvicorn
from uvicorn.config import LOGGING_CONFIG

log = logging.getLogger("bices.serving")

REPORT = struct.Struct("!QQ")  # connections received in all, connections open now
MAX_FDS = 16  # descriptors read from one packet (the dispatcher sends one)


class HandedServer(uvicorn.Server):
    """uvicorn with no listener: it serves the connections that arrive on `channel`."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket) -> None:
        super().__init__(config)
        self._channel = channel
        self._received = 0
        self._adopting = 0  # received, not yet taken up by a protocol
        self._reported: tuple[int, int] | None = None

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

        self._protocol = protocol
        self._channel.setblocking(False)
        loop.add_reader(self._channel.fileno(), self._receive)
        self._report()  # ready: the dispatcher hands nothing to a worker before this

    def _receive(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self._channel, 16, MAX_FDS)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                log.error("the dispatcher's channel failed (%s): shutting down", error)
                message, fds = b"", []
            if not message and not fds:
                loop.remove_reader(self._channel.fileno())
                self.should_exit = True  # the dispatcher is gone
                return
            for fd in fds:
                self._received += 1
                if self.should_exit:  # shutting down: the client sees the connection close
                    socket.socket(fileno=fd).close()
                    continue
                self._adopting += 1
                task = loop.create_task(self._adopt(socket.socket(fileno=fd)))
                self.server_state.tasks.add(task)
                task.add_done_callback(self.server_state.tasks.discard)
            self._report()

    async def _adopt(self, conn: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            conn.setblocking(False)
            await loop.connect_accepted_socket(self._protocol, conn)
        except OSError as error:  # the client left before it was taken up
            log.info("a handed connection could not be served: %s", error)
            conn.close()
        finally:
            self._adopting -= 1

    def _report(self) -> None:
        now = (self._received, len(self.server_state.connections) + self._adopting)
        if now == self._reported:
            return
        try:
            self._channel.send(REPORT.pack(*now))
        except (BlockingIOError, InterruptedError):
            return  # the dispatcher is behind; the next tick tries again
        except OSError:
            return  # the dispatcher is gone; `_receive` sees the channel close
        self._reported = now

    async def on_tick(self, counter: int) -> bool:
        self._report()  # closed connections, within a tick (0.1 s)
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self._channel.fileno() != -1:
            asyncio.get_running_loop().remove_reader(self._channel.fileno())
        await super().shutdown(sockets=sockets)


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
    HandedServer(config, channel).run()


if __name__ == "__main__":
    main()
