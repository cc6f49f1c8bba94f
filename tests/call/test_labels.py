"""The call core's enums keep the strings records, the call store and metrics always had."""

from __future__ import annotations

import orjson

from engine.base import Transcript
from gateway.call.labels import AudioFormat, CallOutcome, Role
from gateway.call.ledger import CallLedger
from tests.test_session import make


def test_gateway_outcome_is_written_and_read_back_as_its_old_string() -> None:
    ledger = CallLedger("CAlabels", "sip")
    ledger.settle(CallOutcome.CALLER_HUNG_UP, "BYE")
    ledger.settle(CallOutcome.COMPLETED)  # the first outcome stands
    record = orjson.loads(orjson.dumps(ledger.to_dict()))
    assert record["outcome"] == "caller-hung-up"
    # A record written before the enum existed names a member.
    assert CallOutcome(record["outcome"]) is CallOutcome.CALLER_HUNG_UP


def test_gateway_labels_compare_equal_to_the_engine_interface_strings() -> None:
    assert AudioFormat.MULAW == "mulaw" and AudioFormat.PCM16 == "pcm16"
    assert {Role.CALLER, Role.BOT} == {"caller", "bot"}
    assert f"{CallOutcome.DRAINED}" == "drained"


def test_gateway_transcript_from_an_unknown_role_is_dropped_and_noted() -> None:
    session, *_ = make()
    session.engine_event(Transcript("narrator", "Meanwhile..."))
    session.engine_event(Transcript("bot", "Hello."))
    assert session.ledger.transcript == [(Role.BOT, "Hello.")]
    assert "unknown role 'narrator'" in session.ledger.errors[0]
    session.close("test")
