class StoreError(Exception):
    """Base class for errors raised by the chunk store."""


class CorruptChunk(StoreError):
    """A stored chunk failed authentication: it was changed, truncated, swapped or is not ours."""


class ObjectNotFound(StoreError):
    """The backend holds no object under this key."""
