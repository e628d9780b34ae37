"""Federation: national nodes that send each other what each partner may receive.

`wire` is what crosses between nodes (signed requests, items); `receive` checks and stores
what a peer sends; `forward` delivers this node's outbox to each peer; `peering` registers
peers and serves the pull endpoint.
"""
