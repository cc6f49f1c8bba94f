"""Campaign files and contact lists: every problem located, bad rows reported and skipped."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from campaignkit import write_campaign
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.campaigns.contacts import read_contacts, read_numbers
from gateway.campaigns.errors import CampaignInvalid
from gateway.campaigns.setup import create_campaign
from gateway.campaigns.spec import load_campaign, parse_duration
from gateway.campaigns.store import open_store

PLANS = Path(__file__).resolve().parents[2] / "dialplans"


def line_of(path: Path, needle: str) -> int:
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if needle in line)


def test_spec_loads_a_full_campaign(tmp_path: Path) -> None:
    path = write_campaign(
        tmp_path,
        f"""\
        dialplan: {PLANS / "campaign-callback.yaml"}
        windows: ["mon-fri 09:00-20:00", "sat 10:00-14:00"]
        start: 2026-03-02
        stop: 2026-03-31
        pacing: {{calls_per_second: 2, max_concurrent: 5}}
        retry:
          busy: {{times: 2, after: [10m, 1h30m]}}
        amd: {{enabled: true, on_machine: message, message: "Hello {{first_name}}"}}
        do_not_call: ["+13125550199"]
        """,
    )
    campaign = load_campaign(path)
    spec = campaign.spec
    assert campaign.dialplan is not None and "callback-line" in campaign.dialplan.routes
    assert spec.retry_policy().delay(*_busy(2)) == 5400.0
    assert spec.amd.mode == "DetectMessageEnd"
    assert spec.pacing_rules().interval == 0.5


def _busy(n: int):
    from gateway.campaigns.outcomes import Outcome

    return Outcome.BUSY, n, n


@pytest.mark.parametrize(
    ("body", "needle", "fragment"),
    [
        ("pacing: {calls_per_second: 0}\n", "pacing:", "greater than 0"),
        ("windows: ['mon-fri 9-17']\n", "windows:", "is not a time window"),
        ("timezone: Mars/Olympus\n", "timezone: Mars", "unknown time zone"),
        ("amd: {on_machine: message}\n", "amd:", "needs the message"),
        ("retry:\n  bussy: {times: 1}\n", "bussy", "retry.bussy"),
        ("start: 2026-03-10\nstop: 2026-03-01\n", "stop:", "before start"),
        ("colour: blue\n", "colour", "unknown key 'colour'"),
        ("dialplan: missing.yaml\n", "dialplan:", "dialplan file not found"),
        ("do_not_call: [nobody.csv]\n", "nobody.csv", "neither a number nor a file"),
    ],
)
def test_spec_errors_name_file_line_and_reason(tmp_path, body, needle, fragment) -> None:
    path = write_campaign(tmp_path, body)
    with pytest.raises(CampaignInvalid) as caught:
        load_campaign(path)
    problems = [p for p in caught.value.problems if fragment in p.message]
    assert problems, f"{fragment!r} not in {caught.value}"
    assert problems[0].file.name == path.name
    if needle != "version":
        assert problems[0].line == line_of(path, needle)


def test_spec_reports_a_yaml_syntax_error_with_its_line(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, "windows: [09:00-17:00\nring_timeout: 30\n")
    with pytest.raises(CampaignInvalid) as caught:
        load_campaign(path)
    assert "YAML" in caught.value.problems[0].message
    assert caught.value.problems[0].line >= line_of(path, "windows")


def test_spec_parses_durations() -> None:
    assert parse_duration("90") == parse_duration(90) == 90.0
    assert parse_duration("1h30m") == 5400.0
    assert parse_duration("45s") == 45.0
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_contacts_bad_rows_are_reported_with_line_numbers_and_skipped(tmp_path: Path) -> None:
    csv = tmp_path / "list.csv"
    csv.write_text(
        "phone,first_name,timezone\n"  # 1
        "+13125550170,Ann,\n"  # 2 ok, zone from the area code
        "not a number,Bob,\n"  # 3 bad phone
        "+13125550170,Ann again,\n"  # 4 duplicate of line 2
        "+14155550172,Cy,Mars/Base\n"  # 5 bad zone
        "+12125550173,Di\n"  # 6 too few fields
        '"+16175550174","Ed\nward",Europe/London\n'  # 7-8 ok, quoted newline, zone given
        "\n"  # 9 blank: not a row
        f"+12065550175,{'x' * 600},\n"  # 10 too long for a <Parameter>
        "312-555-0176,Flo,\n",  # 11 ok, national format
        encoding="utf-8",
    )
    result = read_contacts(csv, default_zone="America/Chicago")
    assert [(c.line, c.phone, c.zone) for c in result.contacts] == [
        (2, "+13125550170", "America/Chicago"),
        (7, "+16175550174", "Europe/London"),
        (11, "+13125550176", "America/Chicago"),
    ]
    assert result.contacts[1].variables == {"first_name": "Ed\nward"}
    reasons = {p.line: p.reason for p in result.skipped}
    assert set(reasons) == {3, 4, 5, 6, 10}
    assert "not a phone number" in reasons[3]
    assert "duplicate of line 2" in reasons[4]
    assert "unknown time zone" in reasons[5]
    assert "2 fields, the header has 3" in reasons[6]
    assert "500" in reasons[10]


@pytest.mark.parametrize(
    ("header", "fragment"),
    [("number,name", "no 'phone' column"), ("phone,route", "reserved"), ("phone,a b", "word")],
)
def test_contacts_refuse_a_bad_header(tmp_path: Path, header: str, fragment: str) -> None:
    csv = tmp_path / "list.csv"
    csv.write_text(f"{header}\n+13125550170,x\n", encoding="utf-8")
    with pytest.raises(CampaignInvalid) as caught:
        read_contacts(csv)
    assert fragment in str(caught.value)


def test_dnc_files_normalize_numbers_and_report_bad_lines(tmp_path: Path) -> None:
    dnc = tmp_path / "dnc.csv"
    dnc.write_text("phone\n# opted out\n(312) 555-0170\nnope\n+442079460018,extra\n")
    numbers, problems = read_numbers(dnc)
    assert numbers == {"+13125550170", "+442079460018"}
    assert [p.line for p in problems] == [4]


def test_create_stores_good_contacts_and_keeps_skipped_rows(tmp_path: Path) -> None:
    path = write_campaign(
        tmp_path,
        "do_not_call: [dnc.txt]\n",
        contacts="phone,first_name\n+13125550170,Ann\nbad,Bob\n+12125550171,Cy\n",
    )
    (tmp_path / "dnc.txt").write_text("+12125550171\nrubbish\n")
    store = open_store(str(tmp_path / "c.db"))
    created = create_campaign(store, path, time.time())
    assert (created.contacts, created.do_not_call) == (2, 1)
    assert [p.line for p in created.skipped] == [3]
    stats = store.stats("spring")
    assert (stats.contacts, stats.remaining, stats.skipped_rows) == (2, 2, 2)
    assert {p.reason.split(":")[0] for p in store.skipped_rows("spring")} >= {"do-not-call list"}


KEYS = st.sampled_from(["version", "name", "caller_id", "contacts", "windows", "start", "stop",
                        "pacing", "retry", "amd", "timezone", "ring_timeout", "x"])  # fmt: skip
VALUES = st.sampled_from(["1", "spring", '"+13125550150"', "contacts.csv", "[00:00-24:00]",
                          "2026-03-01", "2020-13-45", "{calls_per_second: 0}", "[", "]", "{",
                          "'", '"', "&a", "*a", "!!python/object:os.system", "- x", "\t",
                          "\x07", "", "Mars/Olympus"])  # fmt: skip
DOCS = st.lists(st.tuples(KEYS, VALUES, st.sampled_from(["", "  "])), max_size=8).map(
    lambda items: "".join(f"{indent}{k}: {v}\n" for k, v, indent in items)
)


@settings(max_examples=200, deadline=None)
@given(text=DOCS | st.text(max_size=200))
def test_spec_fuzz_gives_a_campaign_or_located_problems(tmp_path_factory, text: str) -> None:
    root = tmp_path_factory.mktemp("spec")
    (root / "contacts.csv").write_text("phone\n+13125550170\n")
    path = root / "campaign.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        load_campaign(path)
    except CampaignInvalid as exc:
        assert exc.problems and all(p.line >= 1 and p.column >= 1 for p in exc.problems)


def test_spec_reports_a_control_character_at_its_place(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, "ring_timeout: 30\nmessage: a\x1fb\n")
    with pytest.raises(CampaignInvalid) as caught:
        load_campaign(path)
    (problem,) = caught.value.problems
    assert (problem.line, problem.column) == (line_of(path, "message"), 11)
    assert "U+001F" in problem.message


def test_spec_refuses_devices_huge_files_and_other_encodings(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * 30_000)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"version: 1\nname: caf\xe9\n")
    for path, fragment, line in [(Path("/dev/zero"), "regular file", 1),
                                 (big, "at most", 1), (latin, "not UTF-8", 2)]:  # fmt: skip
        with pytest.raises(CampaignInvalid) as caught:
            load_campaign(path)
        (problem,) = caught.value.problems
        assert fragment in problem.message and problem.line == line
