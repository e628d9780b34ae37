"""Migration 6: when each version was added to this node (`report_versions.added_at`).

TAXII's `date_added` and `added_after` are about this node, and a version received from a
peer keeps the time its origin stored it (`stored_at`, from which its STIX `modified`
comes), which can be long before it arrived here. `added_at` is set under the node's writer
lock and never decreases in store order, so `added_after` is a seq bound found by index.
Versions stored before this migration get the running greatest `stored_at` in store order.
"""

from __future__ import annotations

from bices.store.taxii_queries import BACKFILL_ADDED

SCHEMA = f"""
ALTER TABLE report_versions ADD COLUMN IF NOT EXISTS added_at text;
{BACKFILL_ADDED};
CREATE INDEX IF NOT EXISTS report_versions_added ON report_versions (added_at, seq);
"""
