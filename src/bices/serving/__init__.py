"""`bices serve --workers N`: the parent that accepts connections and the workers it hands
them to (`dispatch`, `worker`)."""
