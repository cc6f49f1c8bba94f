"""What can go wrong storing a call, by who caused it.

::

    CallStoreError
    ├── StoreUnavailable   the database cannot be reached or refused the write (its side):
    │                      the record is spooled and written later
    └── BadRecord          a record or spool file is malformed (the input's side): it is set
                           aside with its reason, never retried, never fatal
"""

from __future__ import annotations


class CallStoreError(Exception):
    """Base of the call store's errors."""


class StoreUnavailable(CallStoreError):
    """The database is down, unreachable or failing; the write may succeed later."""


class BadRecord(CallStoreError):
    """A call record that cannot be stored (wrong shape, bad id, too large)."""
