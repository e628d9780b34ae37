"""STIX 2.1 bundles in: every ``report`` (and ``grouping``, and a ``note`` about nothing
else being imported) becomes a `ReportDraft`, all or nothing.

A report BICES exported (it carries the BICES report extension) comes back exactly as it
was signed: id, type, title, body, language, label, grading, times, places, attachments
(from the ``artifact`` objects) and, when the originator itself posts it, the signature,
so the receiving node verifies it against the originator's registered key. Its derived
objects are not read: the receiving node exploits the report again. A report another
platform made is read by `bices.stix.foreign`.

Labels: a BICES label marking wins over every other marking of the object. Otherwise
each marking must map through the `TlpPolicy`, and an object's label combines them as the
access rule combines sources (highest classification, releasability the intersection of
what each allows, plus the posting member; caveats the union). An object with no marking
is refused: a label is never guessed. Without a `Directory` the check that a label is
releasable to the poster reads its codes literally (communities are not expanded).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from bices.domain.errors import InvalidInput
from bices.domain.labels import Label, normalise_code
from bices.domain.reports import AttachmentDraft, LabelDraft, ReportDraft
from bices.policy import Directory
from bices.stix._common import (
    STIX_ID,
    extensions_of,
    json_kind,
    parse_timestamp,
    report_stix_id,
    strings_of,
)
from bices.stix.markings import REPORT_EXTENSION_ID, is_label_marking, label_from_marking
from bices.stix.tlp import TlpPolicy, TlpRule, tlp_level

ROOT_TYPES = ("report", "grouping")


@dataclass(frozen=True, slots=True)
class Imported:
    """A draft with the STIX version it came from (a version above 1 updates a report)."""

    stix_id: str
    version: int
    draft: ReportDraft


class Objects:
    """The objects of a bundle by id; of several versions of one object, the latest."""

    def __init__(self, objects: Sequence[dict[str, Any]]) -> None:
        self.by_id: dict[str, dict[str, Any]] = {}
        for obj in objects:
            current = self.by_id.get(obj["id"])
            if current is None or _modified(obj) > _modified(current):
                self.by_id[obj["id"]] = obj
        self._contents: dict[str, str] | None = None
        self._notes: dict[str, list[dict[str, Any]]] | None = None

    def notes_about(self, object_id: str) -> list[dict[str, Any]]:
        """The notes whose object_refs name the object."""
        if self._notes is None:
            self._notes = {}
            for obj in self.by_id.values():
                refs = obj.get("object_refs") if obj["type"] == "note" else None
                for ref in refs if isinstance(refs, list) else []:
                    self._notes.setdefault(str(ref), []).append(obj)
        return self._notes.get(object_id, [])

    def artifact_contents(self) -> dict[str, str]:
        """Base64 contents of the bundle's artifacts by lower-case SHA-256."""
        if self._contents is None:
            self._contents = {}
            for obj in self.by_id.values():
                hashes = obj.get("hashes")
                if obj["type"] != "artifact" or not isinstance(hashes, Mapping):
                    continue
                digest, payload = hashes.get("SHA-256"), obj.get("payload_bin")
                if isinstance(digest, str) and isinstance(payload, str):
                    self._contents[digest.lower()] = payload
        return self._contents

    def get(self, object_id: object) -> dict[str, Any] | None:
        return self.by_id.get(object_id) if isinstance(object_id, str) else None

    def values(self) -> list[dict[str, Any]]:
        return list(self.by_id.values())


def drafts_from_bundle(
    bundle_or_objects: dict[str, Any] | list[dict[str, Any]],
    member: str,
    tlp: TlpPolicy | None = None,
    *,
    directory: Directory | None = None,
) -> list[ReportDraft]:
    """The report drafts a bundle holds, for `member` to post; InvalidInput names the
    object and the reason when anything cannot be mapped, and then nothing is returned."""
    return [i.draft for i in imported_reports(bundle_or_objects, member, tlp, directory=directory)]


def imported_reports(
    bundle_or_objects: dict[str, Any] | list[dict[str, Any]],
    member: str,
    tlp: TlpPolicy | None = None,
    *,
    directory: Directory | None = None,
) -> list[Imported]:
    """As `drafts_from_bundle`, with each draft's STIX id and BICES version."""
    from bices.stix.foreign import foreign_report, standalone_notes

    member = normalise_code(member)
    index = Objects(stix_objects(bundle_or_objects))
    marks = Markings(index, tlp or TlpPolicy.default(), member, directory)
    roots = [o for o in index.values() if o["type"] in ROOT_TYPES and not o.get("revoked")]
    roots += standalone_notes(index, roots)
    if not roots:
        raise InvalidInput("the bundle holds no report, grouping or note to import")
    out = []
    for root in roots:
        extension = extensions_of(root).get(REPORT_EXTENSION_ID)
        if extension is not None and not isinstance(extension, Mapping):
            raise InvalidInput(
                f"{root['id']}: extension {REPORT_EXTENSION_ID} must be an object, "
                f"not {json_kind(extension)}"
            )
        if root["type"] == "report" and extension is not None:
            out.append(own_report(root, extension, index, marks))
        else:
            out.append(foreign_report(root, index, marks))
    return out


def stix_objects(data: object) -> list[dict[str, Any]]:
    """The objects of a bundle (or a list of objects), each checked to be a STIX object."""
    if isinstance(data, Mapping):
        if data.get("type") != "bundle":
            raise InvalidInput(
                f"not a STIX bundle: type is {data.get('type')!r}, expected 'bundle'"
            )
        objects = data.get("objects")
        if not isinstance(objects, list):
            raise InvalidInput("not a STIX bundle: 'objects' is missing or not a list")
    elif isinstance(data, list):
        objects = data
    else:
        raise InvalidInput(f"not a STIX bundle: expected a JSON object, got {type(data).__name__}")
    if not objects:
        raise InvalidInput("the STIX bundle has no objects")
    for position, obj in enumerate(objects):
        if not isinstance(obj, dict):
            raise InvalidInput(f"objects[{position}] is not a JSON object")
        object_id, kind = obj.get("id"), obj.get("type")
        match = STIX_ID.match(object_id) if isinstance(object_id, str) else None
        if match is None or match.group(1) != kind:
            raise InvalidInput(
                f"objects[{position}]: id {object_id!r} is not a STIX id of type {kind!r}"
            )
    return objects


class Markings:
    """Turns an object's markings into a label for the posting member."""

    def __init__(
        self, index: Objects, policy: TlpPolicy, member: str, directory: Directory | None
    ) -> None:
        self.index, self.policy, self.member, self.directory = index, policy, member, directory
        self._labels: dict[str, Label] = {}
        # The label of each set of markings met so far: the objects of an envelope mostly
        # share a few (the label depends on the markings alone, within one bundle).
        self._by_refs: dict[tuple[str, ...], Label] = {}
        self._drafts: dict[Label, LabelDraft] = {}

    def refs(self, obj: Mapping[str, Any]) -> list[str]:
        """The ids of the markings of an object, whole and granular; refuses any that is not
        a list of ids where STIX wants one."""
        refs = list(strings_of(obj, "object_marking_refs", "marking-definition ids"))
        granular_markings = obj.get("granular_markings")
        if granular_markings is not None and not isinstance(granular_markings, list):
            raise InvalidInput(
                f"{obj['id']}: granular_markings must be a list of granular markings, "
                f"not {json_kind(granular_markings)}"
            )
        for granular in granular_markings or []:
            ref = granular.get("marking_ref") if isinstance(granular, Mapping) else granular
            if not isinstance(granular, Mapping) or not isinstance(ref, str | None):
                raise InvalidInput(
                    f"{obj['id']}: granular_markings must be objects whose marking_ref is a "
                    f"marking-definition id; it holds {json_kind(ref)}"
                )
            if ref:
                refs.append(ref)
        return list(dict.fromkeys(refs))

    def label(self, obj: Mapping[str, Any], required: bool = True) -> Label | None:
        """The label of one object; None if it has no marking and none is required."""
        where = obj["id"]
        refs = self.refs(obj)
        if not refs:
            if required:
                raise InvalidInput(
                    f"{where} has no marking (object_marking_refs): BICES does not guess a label"
                )
            return None
        key = tuple(refs)
        found = self._by_refs.get(key)
        if found is None:
            found = self._by_refs[key] = self._label_of(where, refs)
        return found

    def draft(self, label: Label) -> LabelDraft:
        """`label_draft`, made once per label."""
        found = self._drafts.get(label)
        if found is None:
            found = self._drafts[label] = label_draft(label)
        return found

    def _label_of(self, where: str, refs: list[str]) -> Label:
        ours = [m for m in (self.index.get(r) for r in refs) if m and is_label_marking(m)]
        if ours:
            labels = {self._bices_label(m) for m in ours}
            if len(labels) > 1:
                raise InvalidInput(f"{where} carries {len(labels)} different BICES labels")
            label = labels.pop()
            self.check_releasable(where, label)
            return label
        rules = [self._rule(where, ref) for ref in refs]
        return combine(rules, self.member)

    def _bices_label(self, marking: Mapping[str, Any]) -> Label:
        found = self._labels.get(marking["id"])
        if found is None:
            found = self._labels[marking["id"]] = label_from_marking(marking)
        return found

    def _rule(self, where: str, ref: str) -> TlpRule:
        marking = self.index.get(ref)
        try:
            level = tlp_level(ref, marking)
        except InvalidInput as error:
            raise InvalidInput(f"{where}: {error}") from None
        if marking is None and level is None and ref not in self.policy.markings:
            raise InvalidInput(
                f"{where}: marking {ref} is neither in the bundle nor a standard TLP marking"
            )
        try:
            return self.policy.rule(ref, level, _describe(ref, marking))
        except InvalidInput as error:
            raise InvalidInput(f"{where}: {error}") from None

    def check_releasable(self, where: str, label: Label) -> None:
        if self.member == label.originator:
            return
        members = (
            self.directory.expand(label.releasable_to) if self.directory else label.releasable_to
        )
        if self.member not in members:
            raise InvalidInput(
                f"{where}: its label {label.render()} is not releasable to {self.member}"
            )


def combine(parts: Sequence[TlpRule | Label], member: str) -> Label:
    """One label for several markings: the strictest of each part, the poster always in."""
    releasable = frozenset.intersection(*(p.releasable_to for p in parts))
    return Label(
        classification=max(p.classification for p in parts),
        releasable_to=releasable | {member},
        originator=member,
        caveats=frozenset().union(*(p.caveats for p in parts)),
    )


def own_report(
    root: dict[str, Any], ext: Mapping[str, Any], index: Objects, marks: Markings
) -> Imported:
    """A report BICES exported, back as the draft it was signed from."""
    where = root["id"]
    if not any(is_label_marking(index.get(r) or {}) for r in marks.refs(root)):
        raise InvalidInput(f"{where}: a BICES report without its BICES label marking in the bundle")
    label = marks.label(root)
    assert label is not None  # required=True
    if ext.get("originator") != label.originator:
        raise InvalidInput(
            f"{where}: originator {ext.get('originator')!r} differs from its label's "
            f"{label.originator!r}"
        )
    report_id = ext.get("report_id")
    if not isinstance(report_id, str) or report_stix_id(report_id) != where:
        raise InvalidInput(f"{where}: report_id {report_id!r} is not the object's id")
    signed = marks.member == label.originator
    fields = {
        "type": ext.get("report_type"),
        "title": root.get("name"),
        "body": root.get("description", ""),
        "language": ext.get("language"),
        "label": marks.draft(label),
        "source": _source(ext.get("source")),
        "reported_at": ext.get("reported_at"),
        "observed_at": ext.get("observed_at"),
        "locations": ext.get("locations", []),
        "attachments": _attachments(where, ext.get("attachments", []), index),
        "id": ext.get("report_id"),
        "signature": ext.get("signature") if signed else None,
    }
    version = ext.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidInput(f"{where}: version {version!r} is not a whole number from 1")
    return Imported(where, version, make_draft(where, fields))


def make_draft(where: str, fields: Mapping[str, Any]) -> ReportDraft:
    try:
        return ReportDraft.model_validate(dict(fields))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise InvalidInput(f"{where} cannot be a BICES report: {problems}") from None


def label_draft(label: Label) -> LabelDraft:
    data = label.to_json()
    return LabelDraft(
        classification=data["classification"],
        releasable_to=data["releasable_to"],
        caveats=data["caveats"],
    )


def _source(data: object) -> object:
    if isinstance(data, Mapping):
        return {k: data[k] for k in ("name", "reliability", "credibility") if k in data}
    return data


def _attachments(where: str, listed: object, index: Objects) -> list[AttachmentDraft]:
    if not isinstance(listed, list):
        raise InvalidInput(f"{where}: attachments must be a list")
    contents = index.artifact_contents()
    drafts = []
    for item in listed:
        if not isinstance(item, Mapping):
            raise InvalidInput(f"{where}: an attachment entry is not an object")
        digest, name = str(item.get("sha256", "")).lower(), item.get("name")
        payload = contents.get(digest)
        if payload is None:
            raise InvalidInput(
                f"{where}: attachment {name!r} (sha256 {digest}) has no artifact with its "
                "content in the bundle"
            )
        try:
            data = base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput(f"{where}: the artifact of {name!r} is not valid base64") from None
        if hashlib.sha256(data).hexdigest() != digest or len(data) != item.get("size"):
            raise InvalidInput(f"{where}: the content of {name!r} does not match its sha256/size")
        try:
            drafts.append(
                AttachmentDraft.holding(str(name), str(item.get("media_type")), data, payload)
            )
        except ValidationError as error:
            problem = error.errors()[0]["msg"]
            raise InvalidInput(f"{where}: attachment {name!r}: {problem}") from None
    return drafts


def _modified(obj: Mapping[str, Any]) -> str:
    value = obj.get("modified") or obj.get("created") or ""
    if not isinstance(value, str):
        return ""
    try:
        return parse_timestamp(value, obj["id"]).isoformat()
    except InvalidInput:
        return value


def _describe(ref: str, marking: Mapping[str, Any] | None) -> str:
    if marking is None:
        return ref
    kind = marking.get("definition_type") or "custom"
    name = marking.get("name")
    definition = marking.get("definition")
    if not name and isinstance(definition, Mapping):
        name = definition.get("statement")
    return f"{name!r} ({kind}, {ref})" if name else f"{ref} ({kind})"
