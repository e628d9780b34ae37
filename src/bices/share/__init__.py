"""Dissemination: every read path, each through the access rule, with its audit event."""
