"""Admiralty grading and STIX ``confidence``.

STIX 2.1 Appendix A gives the Admiralty Credibility scale as a confidence mapping:
credibility 1 (confirmed) … 5 (improbable) export as 90, 70, 50, 30, 10, and 6 (truth
cannot be judged) as no confidence at all; on import each value falls in its band
(80-100 → 1, 60-79 → 2, 40-59 → 3, 20-39 → 4, 0-19 → 5). Reliability has no STIX
property: the exact grading travels in the BICES report extension. A foreign report is
graded from, in order: that extension; MISP ``admiralty-scale`` taxonomy labels; OpenCTI's
``x_opencti_reliability`` on the author identity; ``confidence``; and otherwise F6
(reliability and truth cannot be judged), the honest grade of an unknown source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bices.domain.errors import InvalidInput
from bices.domain.reports import Reliability
from bices.stix._common import json_kind, strings_of

_TO_CONFIDENCE = {1: 90, 2: 70, 3: 50, 4: 30, 5: 10}
_MISP_LABEL = re.compile(
    r'^admiralty-scale:(source-reliability|information-credibility)="?([a-f1-6])"?$',
    re.IGNORECASE,
)


def confidence(credibility: int) -> int | None:
    """The STIX confidence of an Admiralty credibility; None for 6 (cannot be judged)."""
    return _TO_CONFIDENCE.get(credibility)


def credibility_of(value: object) -> int:
    """The Admiralty credibility of a STIX confidence (6 when there is none)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        return 6
    return 1 + sum(1 for floor in (80, 60, 40, 20) if value < floor)


def foreign_grading(
    report: Mapping[str, Any], author: Mapping[str, Any] | None
) -> tuple[Reliability, int]:
    """The grading of a report another platform made (see the module text)."""
    stated_confidence = report.get("confidence")
    if stated_confidence is not None and credibility_of(stated_confidence) == 6:
        raise InvalidInput(
            f"{report['id']}: confidence must be an integer from 0 to 100, not "
            f"{json_kind(stated_confidence)}"
            + (f" {stated_confidence}" if isinstance(stated_confidence, int | float) else "")
        )
    reliability, credibility = Reliability.F, credibility_of(stated_confidence)
    if author is not None:
        stated = author.get("x_opencti_reliability")
        if isinstance(stated, str) and stated[:1].upper() in Reliability.__members__:
            reliability = Reliability(stated[:1].upper())
    for label in strings_of(report, "labels"):
        match = _MISP_LABEL.match(label)
        if match is None:
            continue
        if match.group(1).lower() == "source-reliability" and match.group(2).isalpha():
            reliability = Reliability(match.group(2).upper())
        elif match.group(2).isdigit():
            credibility = int(match.group(2))
    return reliability, credibility
