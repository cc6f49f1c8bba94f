"""The call store: finished calls in SQLite or PostgreSQL, their audio by URL, a local spool
for when the database is away, retention, and the pages and commands that read them back."""

from gateway.callstore.audio import AudioStore, UnsupportedAudioStore, open_audio_store
from gateway.callstore.errors import BadRecord, CallStoreError, StoreUnavailable
from gateway.callstore.record import CallRow, row_from_record, valid_call_id
from gateway.callstore.spool import Spool
from gateway.callstore.store import CallFilter, CallStore, CallSummary, open_call_store
from gateway.callstore.writer import RecordWriter

__all__ = [
    "AudioStore",
    "BadRecord",
    "CallFilter",
    "CallRow",
    "CallStore",
    "CallStoreError",
    "CallSummary",
    "RecordWriter",
    "Spool",
    "StoreUnavailable",
    "UnsupportedAudioStore",
    "open_audio_store",
    "open_call_store",
    "row_from_record",
    "valid_call_id",
]
