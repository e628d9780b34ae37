"""STIX 2.1 mapping of BICES reports and labels, both ways.

Out: `report_objects` turns one report version (and its extraction) into STIX objects,
`bundle` wraps them; labels become marking definitions (`label_marking`) under the BICES
extension (`extension_definition`). In: `drafts_from_bundle` turns a bundle, ours or
another platform's (MISP, OpenCTI), into report drafts, mapping TLP through a `TlpPolicy`.
Pure functions: no I/O, no store; the TAXII server and the ingest paths build on them.
"""

from bices.stix._common import foreign_report_id, report_stix_id
from bices.stix.export import bundle, report_objects
from bices.stix.importing import Imported, drafts_from_bundle, imported_reports
from bices.stix.markings import (
    EXTENSION_ID,
    REPORT_EXTENSION_ID,
    extension_definition,
    label_marking,
    report_extension_definition,
)
from bices.stix.tlp import TlpLevel, TlpPolicy, TlpRule

__all__ = [
    "EXTENSION_ID",
    "REPORT_EXTENSION_ID",
    "Imported",
    "TlpLevel",
    "TlpPolicy",
    "TlpRule",
    "bundle",
    "drafts_from_bundle",
    "extension_definition",
    "foreign_report_id",
    "imported_reports",
    "label_marking",
    "report_extension_definition",
    "report_objects",
    "report_stix_id",
]
