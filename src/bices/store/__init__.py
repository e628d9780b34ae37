"""The system of record: a `Store` protocol and its backends, chosen by configuration."""

from bices.store.base import (
    Accession,
    AuditLog,
    Coalition,
    Page,
    ReportFilter,
    Reports,
    SearchResult,
    Store,
    UserRecord,
)

__all__ = [
    "Accession",
    "AuditLog",
    "Coalition",
    "Page",
    "ReportFilter",
    "Reports",
    "SearchResult",
    "Store",
    "UserRecord",
]
