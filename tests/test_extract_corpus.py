"""The annotated extraction corpus (bench/corpus/extract/) is well formed; needs no engine."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

CORPUS = Path(__file__).resolve().parent.parent / "bench" / "corpus" / "extract"
HELD_OUT = CORPUS.parent / "extract-heldout"
ENTITY_TYPES = {"PERSON", "ORG", "GPE", "LOC", "UNIT", "EQUIPMENT"}
EVENT_TYPES = {
    "meeting",
    "visit",
    "phone_call",
    "agreement_signed",
    "troop_deployment",
    "arms_transfer",
    "military_exercise",
    "missile_launch",
    "statement",
}
FIELDS = {"id", "language", "published", "title", "text", "entities", "events", "dates"}


def documents() -> list[tuple[Path, dict[str, Any]]]:
    """Both corpora: the held-out documents must be as well formed as the others."""
    paths = sorted(CORPUS.glob("*.json")) + sorted(HELD_OUT.glob("*.json"))
    return [(p, json.loads(p.read_text(encoding="utf-8"))) for p in paths]


DOCS = documents()


def day(value: Any) -> date:
    assert isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value), value
    return date.fromisoformat(value)


def norm(name: str) -> str:
    return " ".join(name.casefold().replace("-", " ").split())


def test_corpus_size_and_languages() -> None:
    languages = Counter(doc["language"] for _, doc in DOCS)
    assert len(DOCS) >= 40
    assert set(languages) == {"en", "id"}
    assert min(languages.values()) >= len(DOCS) // 3, languages


def test_ids_are_unique_and_match_file_names() -> None:
    ids = [doc["id"] for _, doc in DOCS]
    assert len(ids) == len(set(ids)), [i for i, n in Counter(ids).items() if n > 1]
    for path, doc in DOCS:
        assert path.stem == doc["id"]


def test_readme_describes_the_annotation() -> None:
    assert (CORPUS / "README.md").is_file()


@pytest.mark.parametrize(("path", "doc"), DOCS, ids=[p.stem for p, _ in DOCS])
def test_document_is_well_formed(path: Path, doc: dict[str, Any]) -> None:
    assert set(doc) >= FIELDS, FIELDS - set(doc)
    assert isinstance(doc["id"], str) and re.fullmatch(r"[a-z0-9-]+", doc["id"])
    assert doc["language"] in {"en", "id"}
    published = day(doc["published"])
    assert date(2022, 1, 1) <= published <= date(2024, 12, 31)
    assert isinstance(doc["title"], str) and doc["title"].strip()
    assert isinstance(doc["text"], str) and len(doc["text"]) > 200

    assert doc["entities"], "a document without entities"
    seen: set[tuple[str, str]] = set()
    for entity in doc["entities"]:
        assert set(entity) == {"canonical", "type"}, entity
        assert entity["type"] in ENTITY_TYPES, entity
        assert (
            isinstance(entity["canonical"], str)
            and entity["canonical"].strip() == entity["canonical"]
        ), entity
        key = (norm(entity["canonical"]), entity["type"])
        assert key not in seen, f"{entity} listed twice"
        seen.add(key)
    names = [norm(e["canonical"]) for e in doc["entities"]]
    assert len(names) == len(set(names)), "one name under two types"

    for event in doc["events"]:
        assert set(event) == {"type", "date"}, event
        assert event["type"] in EVENT_TYPES, event
        if event["date"] is not None:
            # an event is reported after it happens (a day's grace for time zones)
            assert day(event["date"]) <= published + timedelta(days=1), event

    dates = [day(d) for d in doc["dates"]]
    assert len(dates) == len(set(dates)), "a date listed twice"
    for event in doc["events"]:
        if event["date"] is not None:
            assert event["date"] in doc["dates"], f"event date {event['date']} not in dates"


def test_the_held_out_corpus_is_separate_and_in_both_languages() -> None:
    held = [doc for path, doc in DOCS if path.parent == HELD_OUT]
    assert len(held) >= 20
    assert {doc["language"] for doc in held} == {"en", "id"}
    assert all(doc["id"].startswith("ho-") for doc in held)
    dev_texts = {doc["text"] for path, doc in DOCS if path.parent == CORPUS}
    assert not any(doc["text"] in dev_texts for doc in held)
