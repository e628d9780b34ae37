"""The live stream: the outbox, followed once per process, checked for each subscriber.

One `StreamHub` per server process follows the `events` outbox (woken by the bus at once,
and polling for what other processes stored: a worker's alerts, another server process's
reports, the operator's CLI). It turns each row into a `StreamItem` and keeps the newest
ones in memory. Each subscriber pulls from there at its own pace with its own cursor (the
outbox seq; clients see it sealed, as the SSE `id:`), so a slow subscriber slows no one
and holds no queue: what it has not read yet stays in the hub's buffer, shared by all. A
subscriber that falls out of the buffer while live is told to resume (`overflow`, with
the last id it was handed) and disconnected; one that connects with an old id catches up
from the store.

`items` holds what a stream carries, `hub` the follower of the outbox (one per process),
`subscriber` one open stream and the rule applied to each item before it is sent.

Every item passes `bices.policy.may_see` for the subscriber at send time, against the
directory of that moment. When the directory changes (a suspension, a withdrawal, a
revoked token) every subscriber re-checks its token before it sends anything more, and
is closed if the token or its member no longer passes.
"""

from bices.share.stream.hub import StreamHub
from bices.share.stream.items import (
    EVENT_TAG,
    KINDS,
    Sent,
    StreamClosed,
    StreamItem,
    canonical_names,
    parse_kinds,
    report_data,
)
from bices.share.stream.subscriber import Subscriber

__all__ = [
    "EVENT_TAG",
    "KINDS",
    "Sent",
    "StreamClosed",
    "StreamHub",
    "StreamItem",
    "Subscriber",
    "canonical_names",
    "parse_kinds",
    "report_data",
]
