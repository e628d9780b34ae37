"""The TAXII collections a user is offered, each a view of the reports that user may see.

- `everything`: every report version the user may see;
- one per community of the user's member (`community-nato`, …): versions the user may see
  whose releasability covers every member of that community, i.e. what may be passed on
  to the whole community;
- `ingest`: the one writable collection. Envelopes posted to it become reports of the
  posting user's member; reading it gives the versions that member originated.

Ids are UUIDs derived from the collection's name, the same for every user and node, so a
client can keep them; the alias is accepted in their place.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bices.domain.errors import NotFound
from bices.domain.labels import Label
from bices.domain.users import Viewer
from bices.policy import Directory

NAMESPACE = uuid.UUID("2f8f3c1e-6b0e-5d0c-9b8f-6e0a4c3b7d21")
STIX_MEDIA = "application/stix+json;version=2.1"

LabelTest = Callable[[Label], bool]


@dataclass(frozen=True, slots=True)
class Collection:
    id: str
    alias: str
    title: str
    description: str
    can_write: bool
    admits: LabelTest  # which visible labels the collection shows

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "alias": self.alias,
            "can_read": True,
            "can_write": self.can_write,
            "media_types": [STIX_MEDIA],
        }


def collection_id(alias: str) -> str:
    return str(uuid.uuid5(NAMESPACE, alias))


def _everything(_: Label) -> bool:
    return True


def collections_for(
    viewer: Viewer, communities: list[str], directory: Directory
) -> list[Collection]:
    """The collections offered to `viewer`, whose member belongs to `communities`."""
    offered = [
        Collection(
            collection_id("everything"),
            "everything",
            "Everything you may see",
            "Every report version you may see under the access rule, in the order stored.",
            False,
            _everything,
        )
    ]
    for name in communities:
        members = directory.communities.get(name, frozenset())
        if not members:
            continue

        def covers(label: Label, members: frozenset[str] = members) -> bool:
            return members <= directory.expand(label.releasable_to)

        alias = f"community-{name.lower()}"
        offered.append(
            Collection(
                collection_id(alias),
                alias,
                f"Releasable to {name}",
                f"Report versions you may see whose releasability covers every member of {name}.",
                False,
                covers,
            )
        )
    member = viewer.member

    def originated(label: Label) -> bool:
        return label.originator == member

    offered.append(
        Collection(
            collection_id("ingest"),
            "ingest",
            f"Ingest for {member}",
            "Post STIX 2.1 envelopes here: each report becomes a report of your member, "
            "signed and labelled from its markings (the whole envelope or nothing). Reading "
            f"it gives the report versions {member} originated.",
            viewer.may_write,
            originated,
        )
    )
    return offered


def find(offered: list[Collection], key: str) -> Collection:
    """A collection by id or alias; one not offered answers 404 like a missing one."""
    for collection in offered:
        if key in (collection.id, collection.alias):
            return collection
    raise NotFound(f"collection {key} not found")
