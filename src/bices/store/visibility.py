"""Which labels a viewer may see: the access rule applied once per distinct label.

Items are filtered in the backend's query by these label ids, so every count and facet
comes from the same set the rule allowed. Labels are few and immutable; the answer is
cached per (viewer's clearance, caveats, member, directory version, number of labels).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from bices.domain.labels import Label
from bices.domain.users import Viewer
from bices.policy import Directory, may_see
from bices.recent import Recent

ViewerKey = tuple[str, int, frozenset[str], int, int]
# Reads the current directory and its version number (bumped on every change).
DirectoryState = Callable[[], tuple[Directory, int]]


class LabelIndex:
    """All labels of the store by id, loaded incrementally (labels are never changed)."""

    def __init__(self, load_after: Callable[[int], Iterable[tuple[int, Label]]]) -> None:
        self._load_after = load_after
        self._labels: dict[int, Label] = {}
        self._max_id = 0
        self._lock = threading.Lock()
        self._visible: Recent[ViewerKey, tuple[int, ...]] = Recent(512)

    def get(self, label_id: int) -> Label:
        label = self._labels.get(label_id)
        if label is None:
            self.refresh()
            label = self._labels[label_id]
        return label

    def refresh(self) -> None:
        with self._lock:
            for label_id, label in self._load_after(self._max_id):
                self._labels[label_id] = label
                self._max_id = max(self._max_id, label_id)

    def visible(
        self, viewer: Viewer, directory: Directory, directory_version: int
    ) -> tuple[int, ...]:
        """Ids of the labels the viewer may see, by `bices.policy.may_see`."""
        self.refresh()
        key: ViewerKey = (
            viewer.member,
            int(viewer.clearance),
            viewer.caveats,
            directory_version,
            len(self._labels),
        )
        cached = self._visible.get(key)
        if cached is not None:
            return cached
        with self._lock:
            labels = list(self._labels.items())
        visible = tuple(
            sorted(label_id for label_id, label in labels if may_see(viewer, label, directory))
        )
        self._visible.put(key, visible)
        return visible
