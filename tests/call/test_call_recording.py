"""The call runner records a call the same way on every carrier: a dial-plan bot with
``record: true`` is recorded on SIP as it is on Twilio, into the records folder, as a WAV."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from gateway.call.recording import recording_path
from gateway.dialplan import PlanHolder
from gateway.ids import InvalidIdentifier
from tests.sip.conftest import StartGateway, until
from tests.sip.rawsip import RawUac, pcmu_offer

PLAN = """\
default_route: main
routes:
  main:
    otherwise: {action: bot, engine: echo, record: true}
"""


async def test_gateway_records_a_sip_call_whose_bot_says_record(
    start_gateway: StartGateway, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    gateway, _, calls = await start_gateway(plans=PlanHolder(plan, {"echo"}))
    calls.records_dir = tmp_path  # no recordings_dir: record: true goes beside the records
    uac = await RawUac(("127.0.0.1", gateway.port)).open()
    try:
        assert (await uac.invite(pcmu_offer(uac.port + 2))).status == 200
        await until(lambda: len(calls.active) == 1, "the call to stream")
        assert (await uac.bye()).status == 200
        await until(lambda: bool(calls.ledgers), "the call to end")
    finally:
        uac.close()
    (ledger,) = calls.ledgers
    assert ledger.errors == []
    with wave.open(str(tmp_path / f"{ledger.call_id}.wav")) as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)


def test_gateway_recording_path_is_the_same_rule_for_every_carrier(tmp_path: Path) -> None:
    every, records = tmp_path / "all", tmp_path / "records"
    every.mkdir()
    records.mkdir()
    path = recording_path("c1", recordings_dir=every, records_dir=records, record=False)
    assert path == every.resolve() / "c1.wav"  # every call, asked or not
    path = recording_path("c1", recordings_dir="", records_dir=records, record=True)
    assert path == records.resolve() / "c1.wav"
    assert recording_path("c1", recordings_dir="", records_dir=records, record=False) is None
    assert recording_path("c1", recordings_dir="", records_dir=None, record=True) is None
    with pytest.raises(InvalidIdentifier):  # a Call-ID from the wire never names a file outside
        recording_path("../x", recordings_dir="", records_dir=records, record=True)
