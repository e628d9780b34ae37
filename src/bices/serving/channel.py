"""What the dispatcher and a worker say over the channel between them (a Unix
sequenced-packet socket pair): each packet one message.

- dispatcher → worker: `HANDED`, carrying one accepted connection as a descriptor;
- worker → dispatcher: `REPORT` (connections received in all, connections open now),
  whenever they change, first when the worker is ready; `DRAINING` once it starts to shut
  down, after which it is handed nothing more (what is already on its way is still served).
"""

from __future__ import annotations

import contextlib
import resource
import struct

HANDED = b"c"
REPORT = struct.Struct("!QQ")
DRAINING = b"draining"


def raise_descriptor_limit() -> None:
    """Let the process hold as many descriptors as the hard limit allows: every connection
    is one, and a server out of them refuses clients (the soft limit is often 1,024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else 1 << 20  # Linux's usual nr_open
    if soft != resource.RLIM_INFINITY and soft < target:
        with contextlib.suppress(ValueError, OSError):  # else the soft limit stays
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
