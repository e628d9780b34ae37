"""Two nodes in network namespaces of their own, joined by a veth pair: the link between
them is cut while reports are posted, then healed; every report due to the other node
arrives once, in order. Runs where the machine lets the test make namespaces (root with
`ip netns`); elsewhere it is skipped with the reason."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bices.domain.reports import LabelDraft, ReportDraft
from tests.conftest import report_json
from tests.federation_sites import Site, wait_until


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


def _can_make_namespaces() -> str | None:
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    if os.geteuid() != 0:
        return "making network namespaces needs root"
    probe = f"bices-probe-{os.getpid()}"
    try:
        _ip("netns", "add", probe)
        _ip("netns", "del", probe)
    except subprocess.CalledProcessError as error:
        return f"`ip netns add` is not allowed here: {error.stderr.decode().strip()}"
    return None


@pytest.fixture
def link(tmp_path: Path) -> Iterator[tuple[str, str, str, str]]:
    """Namespaces A and B with addresses on a veth pair: (ns_a, ip_a, ns_b, ip_b)."""
    reason = _can_make_namespaces()
    if reason is not None:
        pytest.skip(reason)
    tag = f"{os.getpid() % 10000}{random.randrange(100)}"
    ns_a, ns_b = f"bices-a{tag}", f"bices-b{tag}"
    net = f"10.{random.randrange(200, 250)}.{random.randrange(256)}"
    ip_a, ip_b = f"{net}.1", f"{net}.2"
    veth_a, veth_b = f"vba{tag}", f"vbb{tag}"
    try:
        _ip("netns", "add", ns_a)
        _ip("netns", "add", ns_b)
        _ip("link", "add", veth_a, "type", "veth", "peer", "name", veth_b)
        for ns, veth, ip in ((ns_a, veth_a, ip_a), (ns_b, veth_b, ip_b)):
            _ip("link", "set", veth, "netns", ns)
            _ip("-n", ns, "addr", "add", f"{ip}/24", "dev", veth)
            _ip("-n", ns, "link", "set", veth, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
        yield ns_a, ip_a, ns_b, ip_b
    finally:
        for ns in (ns_a, ns_b):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_a_cut_link_heals_and_everything_arrives_once_in_order(
    tmp_path: Path, link: tuple[str, str, str, str]
) -> None:
    ns_a, ip_a, ns_b, ip_b = link
    a = Site(tmp_path, "usanode", {"USA": ["NATO"]}, 8470, netns=ns_a, host=ip_a)
    b = Site(tmp_path, "kornode", {"KOR": ["IP4"]}, 8470, netns=ns_b, host=ip_b)
    try:
        a.start()
        b.start()
        # Peering from inside each namespace, with the CLI, by fingerprint.
        for site, other, member in ((a, b, "KOR"), (b, a, "USA")):
            fingerprint = other.node.federation.key.fingerprint
            subprocess.run(
                site.command("--data", str(site.node.settings.data), "peer", "add", other.url,
                             "--member", member, "--key", fingerprint, "--name", other.name),
                check=True, capture_output=True, env=site.env(),
            )  # fmt: skip
        a.user("USA", "usa.writer")
        usa = a.node.coalition.viewer_of("usa.writer")
        draft = ReportDraft.model_validate(report_json())

        def post(title: str) -> str:
            labelled = draft.model_copy(
                update={"title": title, "label": LabelDraft(classification="NATO SECRET",
                                                            releasable_to=["NATO", "KOR"])}
            )  # fmt: skip
            return a.node.collector.submit(usa, [labelled])[0].id

        def held_on_b(report_id: str) -> bool:
            return b.node.store.reports.current_unfiltered(report_id) is not None

        first = post("Before the cut")
        wait_until(lambda: held_on_b(first), 20, "the first report on B")
        _ip("-n", ns_a, "link", "set", f"vba{ns_a.removeprefix('bices-a')}", "down")
        cut = [post(f"During the cut {n}") for n in range(10)]

        def failing() -> bool:
            peer = a.node.store.peers.get("kornode")
            return peer is not None and peer.failures >= 2

        wait_until(failing, 30, "A to fail to deliver across the cut link")
        assert not any(held_on_b(i) for i in cut)
        _ip("-n", ns_a, "link", "set", f"vba{ns_a.removeprefix('bices-a')}", "up")
        wait_until(lambda: all(held_on_b(i) for i in cut), 30, "the backlog on B after healing")
        events = b.node.store.outbox.after(0, 1000, kinds=["report"])
        received = [e.item_id for e in events if e.item_id in set(cut)]
        assert received == cut  # once each, in order
    finally:
        a.close()
        b.close()
