"""`bices serve --workers N` hands each connection to the worker with the fewest open, starts
a worker again when one dies, gives up when workers cannot start, and stops on SIGTERM."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from bices.serving.dispatch import RESTARTS_ALLOWED, Dispatcher, StartupFailed, Worker
from tests.conftest import Coalition, free_port, make_node, node_env, wait_for_health


def children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry))
    return sorted(found)


def peer_ports(pid: int, server_port: int) -> set[int]:
    """The client ports of the TCP connections to `server_port` that process `pid` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        if state == "01" and inode in inodes and int(local.split(":")[1], 16) == server_port:
            ports.add(int(remote.split(":")[1], 16))
    return ports


@contextmanager
def serving(tmp_path: Path, workers: int) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    node = make_node(tmp_path / "node")
    (tmp_path / "token").write_text(Coalition(node).user("USA"))
    env = {**node_env(node), "BICES_EXPLOIT": "false"}
    node.close()
    port = free_port()
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "bices", "serve", "--port", str(port), "--workers", str(workers)],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )  # fmt: skip
    try:
        wait_for_health(f"http://127.0.0.1:{port}", timeout_s=60)
        yield server, port
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=30)
        log.close()


def connect(port: int) -> tuple[httpx.Client, int]:
    """A keep-alive client that has made one request, and its local port."""
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    answer = client.get("/healthz")
    assert answer.status_code == 200
    stream = answer.extensions["network_stream"]
    return client, stream.get_extra_info("client_addr")[1]


def holders(server: subprocess.Popen[bytes], port: int, clients: list[int]) -> dict[int, set[int]]:
    """For each worker process, which of `clients` (local ports) it serves."""
    deadline = time.monotonic() + 5
    while True:
        held = {pid: peer_ports(pid, port) & set(clients) for pid in children(server.pid)}
        if sum(len(p) for p in held.values()) == len(clients) or time.monotonic() > deadline:
            return held
        time.sleep(0.05)


def test_connections_are_spread_evenly_and_closed_ones_are_counted(tmp_path: Path) -> None:
    with serving(tmp_path, workers=2) as (server, port):
        time.sleep(0.3)  # the health checks' connections are closed and reported
        opened = [connect(port) for _ in range(4)]
        held = holders(server, port, [p for _, p in opened])
        assert sorted(len(ports) for ports in held.values()) == [2, 2], held
        assert not peer_ports(server.pid, port), "the dispatcher keeps no connection"

        # Close both connections of one worker: the next two go to it.
        emptied, mine = next(iter(held.items()))
        for client, client_port in opened:
            if client_port in mine:
                client.close()
        time.sleep(0.5)  # the worker sees them close and reports it
        again = [connect(port) for _ in range(2)]
        assert holders(server, port, [p for _, p in again])[emptied] == {p for _, p in again}
        for client, _ in opened + again:
            client.close()


def wait_for_startups(log: Path, count: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while log.read_text().count("Application startup complete") < count:
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    time.sleep(0.3)  # its report follows the line at once; the parent reads it in a tick


def test_a_worker_that_dies_is_started_again(tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with serving(tmp_path, workers=2) as (server, port):
        first = children(server.pid)
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        wait_for_startups(log, 3)
        now = children(server.pid)
        assert len(now) == 2 and first[0] not in now
        clients = [connect(port) for _ in range(4)]
        held = holders(server, port, [p for _, p in clients])
        assert sorted(len(ports) for ports in held.values()) == [2, 2], held
        for client, _ in clients:
            client.close()
        server.terminate()
        assert server.wait(timeout=30) == 0
        for pid in now:  # the workers stopped with it
            assert (
                not Path(f"/proc/{pid}").exists()
                or "Z" in Path(f"/proc/{pid}/stat").read_text().split()[2]
            )
    assert "exited with code -9; starting another" in log.read_text()


def test_a_stopping_worker_is_handed_nothing_and_drops_nothing(tmp_path: Path) -> None:
    """A worker told to stop keeps an open stream for its grace period (3 s); meanwhile
    every new connection goes to the other worker, and none is reset."""
    with serving(tmp_path, workers=2) as (server, port):
        token = (tmp_path / "token").read_text()
        base = f"http://127.0.0.1:{port}"
        time.sleep(0.3)
        with httpx.stream("GET", f"{base}/api/v1/stream", timeout=30,
                          headers={"Authorization": f"Bearer {token}"}) as stream:  # fmt: skip
            assert stream.status_code == 200
            streaming = next(
                pid for pid, ports in holders(server, port, [_client_port(stream)]).items() if ports
            )
            os.kill(streaming, signal.SIGTERM)
            time.sleep(0.3)  # it says it is draining; its stream stays open for the grace
            assert Path(f"/proc/{streaming}").exists()
            answers = []
            for _ in range(20):
                with httpx.Client(base_url=base, timeout=10) as client:
                    answer = client.get("/healthz")
                    answers.append(answer.status_code)
                    held = holders(server, port, [_client_port(answer)])
                    assert not held.get(streaming), "handed to the worker that is stopping"
            assert answers == [200] * 20


def _client_port(response: httpx.Response) -> int:
    port: int = response.extensions["network_stream"].get_extra_info("client_addr")[1]
    return port


def test_workers_that_cannot_start_end_the_server(caplog: pytest.LogCaptureFixture) -> None:
    """A worker that exits at once is started again `RESTARTS_ALLOWED` times in all, then
    the dispatcher gives up rather than loop."""
    command = [sys.executable, "-c", "import sys; sys.exit(3)"]
    dispatcher = Dispatcher("127.0.0.1", 0, 2, command, grace_s=1)
    started = time.monotonic()
    with pytest.raises(StartupFailed, match=r"keep exiting .* code 3"):
        dispatcher.run()
    assert time.monotonic() - started < 30
    restarts = [r for r in caplog.records if "starting another" in r.getMessage()]
    assert len(restarts) == RESTARTS_ALLOWED


def test_a_taken_port_is_a_cli_error(tmp_path: Path) -> None:
    node = make_node(tmp_path / "node")
    env = {**node_env(node), "BICES_EXPLOIT": "false"}
    node.close()
    with serving(tmp_path / "other", workers=2) as (_, port):
        done = subprocess.run(
            [sys.executable, "-m", "bices", "serve", "--port", str(port), "--workers", "2"],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr


def test_a_connection_no_worker_can_take_waits_and_accepting_pauses() -> None:
    """With every worker's channel full, an accepted connection is kept (not closed) and
    the parent accepts no more; once a channel has room, it is handed and accepting
    resumes."""
    dispatcher = Dispatcher("127.0.0.1", 0, 1, ["unused"])
    listener = dispatcher.bind()
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    idle = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        worker = Worker(0, idle, ours, ready=True)
        dispatcher._workers = [worker]
        dispatcher._serving = True
        dispatcher._update_listening()
        while True:  # fill the worker's queue
            try:
                ours.send(b"x" * 512)
            except BlockingIOError:
                break
        client = socket.create_connection(("127.0.0.1", dispatcher.port))
        deadline = time.monotonic() + 5
        while not dispatcher._pending and time.monotonic() < deadline:
            dispatcher._accept(listener)
        assert len(dispatcher._pending) == 1 and not dispatcher._listening
        assert worker.handed == 0

        theirs.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while theirs.recv(4096):  # the worker reads its queue
                pass
        dispatcher._hand_pending()
        dispatcher._update_listening()
        assert not dispatcher._pending and dispatcher._listening and worker.handed == 1
        message, fds, _, _ = socket.recv_fds(theirs, 16, 1)
        assert message == b"c" and len(fds) == 1
        with socket.socket(fileno=fds[0]) as handed:
            client.sendall(b"ping")
            assert handed.recv(4) == b"ping"  # the very connection the client opened
        client.close()
    finally:
        idle.kill()
        idle.wait()
        ours.close()
        theirs.close()
        listener.close()
