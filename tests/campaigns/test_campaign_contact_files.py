"""Contact files: no contact lost without a word. Quotes left open, encodings other than
UTF-8, lists with nobody to call, and a summary whose totals add up, fuzzed with Hypothesis."""

from __future__ import annotations

import codecs
import time
from pathlib import Path

import pytest
from campaignkit import write_campaign
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gateway.campaigns.cli import main
from gateway.campaigns.contacts import decode_contacts, read_contacts
from gateway.campaigns.errors import CampaignInvalid
from gateway.campaigns.setup import create_campaign
from gateway.campaigns.store import open_store

FIVE = (
    "phone,first_name,appointment\n"  # 1
    "+13125550170,Ann,Tuesday\n"  # 2
    "+13125550171,Bob,Wednesday\n"  # 3
)


def write(tmp_path: Path, data: str | bytes) -> Path:
    path = tmp_path / "list.csv"
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8", newline="")
    else:
        path.write_bytes(data)
    return path


def test_contacts_report_rows_swallowed_by_a_quote_left_open_in_the_last_column(tmp_path):
    text = FIVE + '+13125550172,Cy,"Thursday\n+13125550173,Di,Friday\n+13125550174,Ed,Monday\n'
    result = read_contacts(write(tmp_path, text))
    assert [c.phone for c in result.contacts] == ["+13125550170", "+13125550171"]
    (problem,) = result.skipped
    assert (problem.line, problem.end, problem.kind) == (4, 6, "quote")
    assert str(problem).startswith("lines 4-6: a quote opened on line 4")
    assert '+13125550172,Cy,"Thursday' in problem.reason  # the opening line, as it was
    assert result.lines == result.accounted() == 6
    assert result.summary() == "6 lines read: 2 contacts kept, 1 rows skipped (1 quote), 0 blank"


def test_contacts_report_every_line_a_quote_in_another_column_consumed(tmp_path) -> None:
    text = (
        FIVE + '+13125550172,"Cy,Thursday\n+13125550173,Di,Friday\nFri",x\n+13125550175,Flo,Sat\n'
    )
    result = read_contacts(write(tmp_path, text))
    (problem,) = result.skipped
    assert (problem.line, problem.end) == (4, 6)  # the row ran over lines 4-6, not "line 4"
    assert [c.line for c in result.contacts] == [2, 3, 7]
    assert result.accounted() == result.lines == 7


def test_contacts_keep_a_quoted_line_break_inside_one_value(tmp_path) -> None:
    result = read_contacts(write(tmp_path, FIVE + '+13125550172,"Ed\nward",Thursday\n'))
    assert result.contacts[-1].variables["first_name"] == "Ed\nward"
    assert (result.contacts[-1].lines, result.skipped) == (2, [])
    assert result.accounted() == result.lines == 5


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-8-sig"])
def test_contacts_decode_files_their_byte_order_mark_names(tmp_path, codec: str) -> None:
    bom = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE}.get(codec, b"")
    data = bom + (FIVE + "+13125550172,Zoë,Friday\n").encode(codec)
    result = read_contacts(write(tmp_path, data))
    assert [c.variables["first_name"] for c in result.contacts] == ["Ann", "Bob", "Zoë"]


def test_contacts_refuse_latin1_with_the_line_and_a_hint(tmp_path) -> None:
    path = write(tmp_path, (FIVE + "+13125550172,Zoë,Friday\n").encode("latin-1"))
    with pytest.raises(CampaignInvalid) as caught:
        read_contacts(path)
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (4, 16)
    assert "0xeb is not UTF-8" in problem.message and "CSV UTF-8" in problem.message
    assert "byte" in str(caught.value) and "offset" not in str(caught.value)


def test_contacts_refuse_utf16_without_a_byte_order_mark_with_a_hint(tmp_path) -> None:
    path = write(tmp_path, (FIVE + "+13125550172,Zoë,Friday\n").encode("utf-16-le"))
    with pytest.raises(CampaignInvalid) as caught:
        read_contacts(path)
    assert "UTF-16 without a byte-order mark" in str(caught.value)


@pytest.mark.parametrize(
    "contacts", ["phone,first_name\n", "phone,first_name\n\n\n", "phone,first_name\nnope,Ann\n"]
)
def test_create_refuses_a_list_with_no_contacts(tmp_path, contacts: str) -> None:
    path = write_campaign(tmp_path, "windows: ['00:00-24:00']\n", contacts=contacts)
    store = open_store(str(tmp_path / "c.db"))
    with pytest.raises(CampaignInvalid) as caught:
        create_campaign(store, path, time.time())
    assert "no contacts to call" in str(caught.value)
    assert store.campaign_ids() == []  # the name is not used up


def test_cli_create_prints_totals_that_add_up_and_warns_of_a_passed_stop(tmp_path, capsys):
    contacts = FIVE + "\nnope,Cy,Friday\n+13125550170,Ann,again\n+1312555017,Di\n"
    path = write_campaign(tmp_path, "start: 2020-01-01\nstop: 2020-01-31\n", contacts=contacts)
    assert main(["create", str(path), "--store", str(tmp_path / "c.db")]) == 0
    captured = capsys.readouterr()
    assert ("7 lines read: 2 contacts kept, 3 rows skipped (1 duplicate, 1 fields, 1 phone), "
            "1 blank") in captured.out  # fmt: skip
    assert "stop date 2020-01-31 has passed" in captured.err


# -- fuzzing ------------------------------------------------------------------------------

CELLS = st.sampled_from(
    ["+13125550170", "+13125550171", "(312) 555-0172", "nope", "Ann", '"', '""', '"x', "a\"b",
     "", " ", "Europe/London", "Mars/Base", "x" * 520]
)  # fmt: skip
ROWS = st.lists(CELLS, min_size=0, max_size=4).map(",".join)
TEXTS = st.lists(ROWS, max_size=12).flatmap(
    lambda rows: st.sampled_from(["\n", "\r\n", "\r"]).map(
        lambda nl: "phone,first_name,timezone" + nl + nl.join(rows)
    )
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS | st.text(max_size=300))
# Found by this test: the row swallowed inside a quote had two fields, not the header's three.
@example(text='phone,first_name,timezone\n+13125550170,",+13125550170\n+13125550170,",')
def test_contacts_fuzz_every_line_is_accounted_for(text: str) -> None:
    try:
        result = read_contacts("fuzz.csv", text=text, default_zone="America/Chicago")
    except CampaignInvalid as exc:
        assert exc.problems and all(p.line >= 1 for p in exc.problems)
        return
    assert result.accounted() == result.lines
    assert all(c.phone.startswith("+") and c.phone[1:].isdigit() for c in result.contacts)
    assert len({c.phone for c in result.contacts}) == len(result.contacts)
    assert sum(result.by_reason().values()) == len(result.skipped)
    for contact in result.contacts:  # no swallowed row reaches a bot as a value
        assert not any("+1312555017" in line for v in contact.variables.values()
                       for line in v.splitlines()[1:])  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=200) | st.text(max_size=80).map(lambda t: t.encode("utf-16")))
def test_contacts_fuzz_decoding_gives_text_or_a_located_refusal(data: bytes) -> None:
    try:
        text = decode_contacts(data, "fuzz.csv")
    except CampaignInvalid as exc:
        (problem,) = exc.problems
        assert problem.line >= 1 and problem.column >= 1 and "save it" in problem.message
    else:
        assert isinstance(text, str)


def test_contacts_skip_a_time_zone_name_too_long_for_the_file_system() -> None:
    text = f"phone,timezone\n+13125550170,{'x' * 300}\n+13125550171,{'Europe/' * 40}\n"
    result = read_contacts("long.csv", text=text)
    assert [p.kind for p in result.skipped] == ["zone", "zone"]
    assert all(len(p.reason) < 100 for p in result.skipped)
