"""The parent process of `bices serve --workers N`: it accepts every connection and hands
each to the worker process holding the fewest open connections.

Processes that all accept on one shared socket get connections as the kernel's wake-ups
fall: the first to wake takes every connection then waiting (asyncio and libuv accept all
that are queued). A node's clients are mostly few and long-lived (TAXII feeds, stream
subscribers, peers), so that could put every client on one process and leave the others
idle: with two TAXII clients posting over keep-alive connections to two workers, both
connections landed on one process in 1 of 4 rounds measured per process, which then ran at
half the throughput. Node.js's cluster module dispatches from its primary process for the
same reason. Here the parent accepts, picks the worker with the fewest open connections
(ties in turn), and passes the connection's descriptor over a Unix socket (`SCM_RIGHTS`);
the worker serves it with uvicorn as if it had accepted it (`bices.serving.worker`). The
parent holds no connection after the hand-over; its work is one `accept` and one `sendmsg`
per connection.

Workers report how many connections they have received and hold open. One that has not yet
reported (still opening the node) gets nothing; at the start, connections wait in the listen
queue until every worker is ready, so that the first clients are spread too. A worker that
dies is started again, unless workers keep dying, which ends the server with an error.
SIGTERM or SIGINT stops accepting, passes the signal on, and waits for the workers'
graceful shutdown. Unix only.
"""

from __future__ import annotations

import errno
import logging
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bices.serving.channel import DRAINING, HANDED, REPORT, raise_descriptor_limit

log = logging.getLogger("bices.serving")

BACKLOG = 2048  # as uvicorn's default
ACCEPTS_PER_WAKE = 64  # then the workers' reports get a turn
RESTARTS_ALLOWED = 5  # within RESTART_WINDOW_S; one more and the server gives up
RESTART_WINDOW_S = 30.0
STARTUP_WAIT_S = 60.0  # at the start, accept once every worker is ready or after this long
ACCEPT_PAUSE_S = 0.5  # after accept fails for want of descriptors or memory
RETRY_S = 0.05  # how soon a connection no worker could take is offered again
# `send_fds` errors that mean the worker's end of the channel is gone; any other (its queue
# full, descriptors in flight over the user's limit, memory) says nothing of the worker.
CHANNEL_GONE = frozenset({errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN, errno.EBADF})


@dataclass
class Worker:
    """One worker process, as the dispatcher knows it."""

    index: int
    process: subprocess.Popen[bytes]
    channel: socket.socket  # the dispatcher's end
    ready: bool = False  # it has reported and is not stopping: it may be handed connections
    handed: int = 0  # connections handed to this process
    received: int = 0  # ... of which it had received at its last report
    open: int = 0  # connections it held open at its last report
    draining: bool = False  # it said it is stopping
    exited: bool = False

    @property
    def load(self) -> int:
        """Open connections, counting those handed over since its last report."""
        return self.open + (self.handed - self.received)


class StartupFailed(RuntimeError):
    """Workers keep dying as they start: the node cannot be served."""


class Dispatcher:
    """Accept on (host, port); run `workers` copies of `command` (the channel's descriptor
    is appended to it) and hand them the connections."""

    def __init__(
        self,
        host: str,
        port: int,
        workers: int,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        grace_s: float = 3.0,
    ) -> None:
        if workers < 1:
            raise ValueError("at least one worker")
        self.host, self.port, self.count = host, port, workers
        self._command = list(command)
        self._env = None if env is None else dict(env)
        self._grace_s = grace_s
        self._workers: list[Worker] = []
        self._turn = 0  # where the next tie is broken
        self._restarts: list[float] = []
        self._stopping = False
        self._selector = selectors.DefaultSelector()
        self._listener: socket.socket | None = None
        self._listening = False
        self._pending: deque[socket.socket] = deque()  # accepted; no worker could take yet
        self._accept_paused_until = 0.0
        self._serving = False  # every first worker has been ready once (or the wait ended)
        self._startup_deadline = 0.0

    # -- running -------------------------------------------------------------------------

    def bind(self) -> socket.socket:
        """The listening socket (bound before the workers start, so a taken port fails at
        once); `port` 0 picks a free one, read back into `port`."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.create_server((self.host, self.port), family=family, backlog=BACKLOG)
        listener.setblocking(False)
        self.port = listener.getsockname()[1]
        self._listener = listener
        return listener

    def run(self) -> None:
        """Serve until SIGTERM or SIGINT; raises `StartupFailed` if workers cannot start."""
        listener = self._listener or self.bind()
        raise_descriptor_limit()
        wake_r, wake_w = socket.socketpair()
        for end in (wake_r, wake_w):
            end.setblocking(False)
        previous_wakeup = signal.set_wakeup_fd(wake_w.fileno())
        handlers = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        self._selector.register(wake_r, selectors.EVENT_READ, None)
        try:
            self._startup_deadline = time.monotonic() + STARTUP_WAIT_S
            for index in range(self.count):
                self._start(index)
            log.info("bices serve: %d workers on %s:%d; each connection goes to the one "
                     "with the fewest open", self.count, self.host, self.port)  # fmt: skip
            while not self._stopping:
                timeout = RETRY_S if self._pending or not self._listening else 1.0
                for key, _ in self._selector.select(timeout=timeout):
                    if key.fileobj is listener:
                        if self._listening:  # not an event from before it was switched off
                            self._accept(listener)
                    elif key.fileobj is wake_r:
                        _drain(wake_r)
                    else:
                        self._read_reports(key.data)
                self._replace_exited()
                self._hand_pending()
                self._update_listening()
        finally:
            self._stop(listener)
            signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            self._selector.close()
            wake_r.close()
            wake_w.close()

    def _on_signal(self, signum: int, _frame: object) -> None:
        self._stopping = True

    # -- workers -------------------------------------------------------------------------

    def _start(self, index: int) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            process = subprocess.Popen(
                [*self._command, str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                env=self._env,
            )
        finally:
            theirs.close()
        ours.setblocking(False)
        worker = Worker(index, process, ours)
        self._selector.register(ours, selectors.EVENT_READ, worker)
        if index < len(self._workers):
            self._workers[index] = worker
        else:
            self._workers.append(worker)

    def _read_reports(self, worker: Worker) -> None:
        while not worker.exited:
            try:
                packet = worker.channel.recv(REPORT.size)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                packet = b""
            if not packet:  # the worker is gone
                self._retire(worker)
            elif packet == DRAINING:  # it is stopping: hand it nothing more
                worker.draining = True
                worker.ready = False
            elif len(packet) == REPORT.size and not worker.draining:
                worker.received, worker.open = REPORT.unpack(packet)
                worker.ready = True

    def _retire(self, worker: Worker) -> None:
        if worker.exited:
            return
        worker.exited = True
        worker.ready = False
        self._selector.unregister(worker.channel)
        worker.channel.close()

    def _replace_exited(self) -> None:
        for worker in list(self._workers):
            code = worker.process.poll()
            if code is None:
                continue
            self._retire(worker)
            if self._stopping:
                continue
            now = time.monotonic()
            self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW_S]
            if len(self._restarts) >= RESTARTS_ALLOWED:
                raise StartupFailed(
                    f"worker processes keep exiting (the last with code {code}); "
                    "see the messages above"
                )
            self._restarts.append(now)
            log.warning("worker %d (pid %d) exited with code %s; starting another",
                        worker.index, worker.process.pid, code)  # fmt: skip
            self._start(worker.index)

    # -- connections ---------------------------------------------------------------------

    def _update_listening(self) -> None:
        """Accept only while some worker is ready and no accepted connection still waits for
        one; at the start, only once every worker is ready (or the wait has ended), so that
        the first clients are not all given to the first worker up. Meanwhile connections
        wait in the listen queue."""
        assert self._listener is not None
        ready = sum(w.ready for w in self._workers)
        if not self._serving and ready > 0:
            whole = ready == self.count
            self._serving = whole or time.monotonic() >= self._startup_deadline
        on = (
            self._serving
            and ready > 0
            and not self._pending
            and not self._stopping
            and time.monotonic() >= self._accept_paused_until
        )
        if on and not self._listening:
            self._selector.register(self._listener, selectors.EVENT_READ, None)
        elif not on and self._listening:
            self._selector.unregister(self._listener)
        self._listening = on

    def _accept(self, listener: socket.socket) -> None:
        for _ in range(ACCEPTS_PER_WAKE):
            if self._stopping:
                return
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:  # the client left while queued
                continue
            except OSError as error:  # out of descriptors or memory: pause, then go on
                log.error("accept failed (%s); accepting again in %.1f s",
                          error.strerror or error, ACCEPT_PAUSE_S)  # fmt: skip
                self._accept_paused_until = time.monotonic() + ACCEPT_PAUSE_S
                self._update_listening()
                return
            if not self._hand(conn):
                self._pending.append(conn)  # kept; no more accepted until it is handed
                self._update_listening()
                return

    def _hand_pending(self) -> None:
        while self._pending and self._hand(self._pending[0]):
            self._pending.popleft()

    def _hand(self, conn: socket.socket) -> bool:
        """Pass `conn` to the ready worker with the fewest open connections (ties in turn)
        and close our copy; False if no worker can take it now (then `conn` stays open)."""
        ready = [w for w in self._workers if w.ready]
        n = len(self._workers)
        for worker in sorted(ready, key=lambda w: (w.load, (w.index - self._turn) % n)):
            try:
                socket.send_fds(worker.channel, [HANDED], [conn.fileno()])
            except (BlockingIOError, InterruptedError):
                continue  # its queue is full: it is slow or stuck; try the next
            except OSError as error:
                if error.errno in CHANNEL_GONE:
                    self._retire(worker)
                else:  # not the worker's doing (descriptors in flight, memory): later
                    log.warning("could not hand a connection to worker %d: %s",
                                worker.index, error.strerror or error)  # fmt: skip
                continue
            worker.handed += 1
            self._turn = worker.index + 1
            conn.close()
            return True
        return False

    # -- stopping ------------------------------------------------------------------------

    def _stop(self, listener: socket.socket) -> None:
        listener.close()
        while self._pending:  # never handed: the clients see the connection close
            self._pending.popleft().close()
        for worker in self._workers:
            if worker.process.poll() is None:
                worker.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self._grace_s + 10
        for worker in self._workers:
            try:
                worker.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.error("worker %d did not stop; killing it", worker.index)
                worker.process.kill()
                worker.process.wait()
            if not worker.exited:
                worker.exited = True
                worker.channel.close()


def worker_command(grace_s: float) -> list[str]:
    """The command of a worker process; the channel's descriptor is appended to it."""
    return [sys.executable, "-m", "bices.serving.worker", "--grace", str(grace_s), "--channel"]


def _drain(sock: socket.socket) -> None:
    try:
        while sock.recv(512):
            pass
    except (BlockingIOError, InterruptedError):
        pass
