"""``overtalk calls list`` and ``calls show`` read the store; bad filters are refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from callkit import finished_call
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.callstore.query import BadQuery, call_filter, parse_since
from gateway.callstore.record import row_from_record
from gateway.callstore.store import open_call_store
from gateway.cli import main


def test_cli_calls_list_filters_and_show_renders(tmp_path: Path, capsys) -> None:
    records = tmp_path / "records"
    records.mkdir()
    store = open_call_store(str(records / "calls.db"))
    sales = finished_call(route="sales", ended_at=1_770_000_000.0)
    support = finished_call(route="support", ended_at=1_770_000_060.0)
    for ledger in (sales, support):
        store.save(row_from_record(ledger.to_dict(), audio_url=None, gateway="g"), 1.0)
    store.close()
    assert main(["calls", "list", "--records-dir", str(records)]) == 0
    out = capsys.readouterr().out
    assert out.index(support.call_id) < out.index(sales.call_id) and "2 calls" in out
    assert main(["calls", "list", "--records-dir", str(records), "--route", "sales"]) == 0
    out = capsys.readouterr().out
    assert sales.call_id in out and support.call_id not in out
    page = tmp_path / "t.html"
    assert main(["calls", "show", sales.call_id, "--records-dir", str(records),
                 "--out", str(page)]) == 0  # fmt: skip
    assert "Will you make it?" in page.read_text()
    assert main(["calls", "list", "--records-dir", str(records), "--since", "soon"]) == 2
    assert "since" in capsys.readouterr().err
    assert main(["calls", "show", "../x", "--records-dir", str(records)]) == 2
    assert main(["calls", "list", "--records-dir", str(tmp_path / "none")]) == 1
    assert "no call store" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()  # reading never creates a store


@pytest.mark.parametrize(
    ("text", "expected"),
    [("90m", 1000.0 - 5400), ("2d", 1000.0 - 172800), ("1970-01-01T00:10:00", 600.0),
     ("1970-01-01T01:00:00+01:00", 0.0)],
)  # fmt: skip
def test_since_reads_durations_and_dates(text: str, expected: float) -> None:
    assert parse_since(text, 1000.0) == expected


@pytest.mark.parametrize("text", ["yesterday", "5w", "-3d", "9" * 60])
def test_since_refuses_the_rest(text: str) -> None:
    with pytest.raises(BadQuery):
        parse_since(text, 1000.0)


@settings(max_examples=300, deadline=None)
@given(values=st.dictionaries(
    st.sampled_from(["since", "route", "outcome", "campaign", "caller", "limit", "token"]),
    st.text(max_size=300), max_size=7))  # fmt: skip
def test_call_filter_fuzzed_is_a_filter_or_bad_query(values: dict[str, str]) -> None:
    """Whatever a query string holds, the page gets a bounded filter or a clear refusal."""
    try:
        where = call_filter(values, 1_770_000_000.0)
    except BadQuery:
        return
    assert 1 <= where.limit <= 1000
    assert all(len(getattr(where, f)) <= 128 for f in ("route", "outcome", "campaign", "caller"))
