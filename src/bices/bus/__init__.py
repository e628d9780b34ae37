"""The event bus: a `Bus` protocol and its backends (in-process now, NATS JetStream next)."""
