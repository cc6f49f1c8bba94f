"""The spool: whole records only, bad files set aside with their reason, fuzzed loader."""

from __future__ import annotations

from pathlib import Path

import orjson
from callkit import finished_call
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.callstore.errors import BadRecord
from gateway.callstore.record import row_from_record
from gateway.callstore.spool import Spool, parse_spooled


def test_spool_keeps_whole_records_and_sets_bad_files_aside(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    good = finished_call()
    spool.put(good.call_id, orjson.dumps(good.to_dict()))
    (spool.directory / "CAbroken.json").write_bytes(b"{not json")
    (spool.directory / "CAother.json").write_bytes(orjson.dumps({"call_id": "CAelse"}))
    (spool.directory / "CAhalf.json.part").write_bytes(b'{"call_id": "CAha')  # a crash mid-write
    records = list(spool.records())
    assert [r["call_id"] for r in records] == [good.call_id]
    assert spool.names() == [f"{good.call_id}.json"]
    assert "not JSON" in (spool.rejected / "CAbroken.json.reason").read_text()
    assert "another call's" in (spool.rejected / "CAother.json.reason").read_text()
    spool.done(good.call_id)
    spool.done(good.call_id)  # twice is harmless
    assert len(spool) == 0


@settings(max_examples=300, deadline=None)
@given(name=st.text(max_size=60), data=st.binary(max_size=200))
def test_spool_loader_fuzzed_raises_only_bad_record(name: str, data: bytes) -> None:
    try:
        record = parse_spooled(name, data)
    except BadRecord:
        return
    assert isinstance(record, dict) and f"{record['call_id']}.json" == name


#: JSON values as a spool file may hold them (orjson encodes 64-bit integers).
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                 max_size=3),
    max_leaves=10,
)  # fmt: skip
_FIELDS = st.sampled_from(
    ["call_id", "route", "caller", "outcome", "started_at", "ended_at", "clears", "transcript",
     "results", "metrics", "clear_latencies"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(record=st.dictionaries(_FIELDS | st.text(max_size=8), _JSON, max_size=8))
def test_spool_record_fuzzed_becomes_a_row_or_bad_record(record: dict) -> None:
    """Whatever a spool file holds, it is stored or refused with a reason: nothing else."""
    record.setdefault("call_id", "CAfuzz")
    try:
        parsed = parse_spooled(f"{record['call_id']}.json", orjson.dumps(record))
        row = row_from_record(parsed, audio_url=None, gateway="g")
    except BadRecord:
        return
    assert row.call_id == record["call_id"] and row.duration >= 0
