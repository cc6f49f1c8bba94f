"""TwiML rendered from dial-plan decisions, parsed with ElementTree (never string compares)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.carriers.twilio.twiml import connect_stream, render
from gateway.dialplan import CallFacts, after_dial, load, route

STREAM = "wss://gw.example.com/twilio/media"
ACTION = "https://gw.example.com/twilio/after?call=CA123"
VM = "https://gw.example.com/twilio/voicemail?from=%2B14085551234"

PLAN = """
default_route: main
routes:
  main:
    numbers: ["+15550000001"]
    otherwise:
      action: bot
      engine: echo
      greeting: "Hi {caller}"
      fallback:
        action: say
        text: "Sorry, try later."
        voice: Polly.Joanna
        language: en-US
        then: hangup
  transfer:
    numbers: ["+15550000002"]
    otherwise:
      action: transfer
      to: "+14155550199"
      caller_id: "+15550000002"
      timeout: 20
      record: true
      on_no_answer:
        action: voicemail
        greeting: "Leave a message."
        max_length: 60
        store: https://crm.example.com/voicemail
  sip:
    numbers: ["+15550000003"]
    otherwise:
      action: transfer
      to: "sip:desk@pbx.example.com"
      sip_username: overtalk
      sip_password: ${PBX_PASSWORD}
  voicemail:
    numbers: ["+15550000004"]
    otherwise:
      action: voicemail
      greeting_audio: https://cdn.example.com/closed.mp3
      beep: false
      max_length: 600
      transcribe: false
      store: recordings
  play:
    numbers: ["+15550000005"]
    otherwise:
      action: play
      url: https://cdn.example.com/jingle.wav
      loop: 2
      then: {action: say, text: "Goodbye {called}"}
  reject:
    numbers: ["+15550000006"]
    otherwise: {action: reject, reason: busy}
  hangup:
    numbers: ["+15550000007"]
    otherwise: hangup
"""


@pytest.fixture
def plan(plans, engines):
    return load(plans.write(PLAN), engines, env={"PBX_PASSWORD": "s3cret"})


def decide(plan, to):
    return route(plan, CallFacts(to=to, from_="+14085551234", at=datetime(2026, 1, 1, tzinfo=UTC)))


def verbs(xml: str) -> list[ET.Element]:
    root = ET.fromstring(xml)
    assert root.tag == "Response"
    return list(root)


def test_render_bot_connects_stream_with_parameters_then_fallback(plan):
    decision = decide(plan, "+15550000001")
    xml = render(decision, stream_url=STREAM, parameters={"token": "t0k"})
    connect, say, hangup = verbs(xml)
    assert connect.tag == "Connect"
    (stream,) = list(connect)
    assert stream.tag == "Stream"
    assert stream.get("url") == STREAM
    params = {p.get("name"): p.get("value") for p in stream.findall("Parameter")}
    assert params == {
        "token": "t0k",
        "route": "main",
        "branch": "otherwise",
        "plan": plan.digest,
    }
    assert (say.tag, say.text, say.get("voice"), say.get("language")) == (
        "Say",
        "Sorry, try later.",
        "Polly.Joanna",
        "en-US",
    )
    assert hangup.tag == "Hangup"


def test_render_bot_matches_connect_stream_verb(plan):
    decision = decide(plan, "+15550000001")
    names = {"route": "main", "branch": "otherwise", "plan": plan.digest}
    rendered = verbs(render(decision, stream_url=STREAM, parameters={}))[0]
    reference = verbs(connect_stream(STREAM, names))[0]
    assert ET.tostring(rendered) == ET.tostring(reference)


def test_render_refuses_reserved_parameter_names(plan):
    with pytest.raises(ValueError, match="reserved"):
        render(decide(plan, "+15550000001"), stream_url=STREAM, parameters={"route": "x"})


def test_render_refuses_query_string_in_stream_url(plan):
    with pytest.raises(ValueError, match="query string"):
        render(decide(plan, "+15550000001"), stream_url=STREAM + "?a=1", parameters={})


def test_render_transfer_dials_number_with_action_url(plan):
    decision = decide(plan, "+15550000002")
    (dial,) = verbs(render(decision, stream_url=STREAM, parameters={}, action_url=ACTION))
    assert dial.tag == "Dial"
    assert dial.get("callerId") == "+15550000002"
    assert dial.get("timeout") == "20"
    assert dial.get("record") == "record-from-answer"
    (number,) = list(dial)
    assert (number.tag, number.text) == ("Number", "+14155550199")
    url = urlsplit(dial.get("action"))
    query = parse_qs(url.query)
    assert url.path == "/twilio/after"
    assert query == {
        "call": ["CA123"],
        "route": ["transfer"],
        "branch": ["otherwise"],
        "plan": [plan.digest],
    }


def test_render_transfer_without_action_url_inlines_no_answer(plan):
    decision = decide(plan, "+15550000002")
    dial, say, record, hangup = verbs(render(decision, stream_url=STREAM, parameters={}))
    assert dial.tag == "Dial" and dial.get("action") is None
    assert (say.tag, say.text) == ("Say", "Leave a message.")
    assert record.tag == "Record"
    assert record.get("recordingStatusCallback") == "https://crm.example.com/voicemail"
    assert record.get("transcribeCallback") == "https://crm.example.com/voicemail"
    assert hangup.tag == "Hangup"


def test_render_after_dial_renders_no_answer_action(plan):
    decision = after_dial(decide(plan, "+15550000002"), "no-answer")
    say, record, _ = verbs(render(decision, stream_url=STREAM, parameters={}, action_url=ACTION))
    assert say.text == "Leave a message."
    assert record.get("maxLength") == "60"
    assert parse_qs(urlsplit(record.get("action")).query)["path"] == ["on_no_answer"]


def test_render_transfer_to_sip_with_credentials(plan):
    (dial,) = verbs(render(decide(plan, "+15550000003"), stream_url=STREAM, parameters={}))
    (sip,) = list(dial)
    assert sip.tag == "Sip"
    assert sip.text == "sip:desk@pbx.example.com"
    assert (sip.get("username"), sip.get("password")) == ("overtalk", "s3cret")


def test_render_voicemail_plays_greeting_then_records(plan):
    decision = decide(plan, "+15550000004")
    play, record, hangup = verbs(
        render(decision, stream_url=STREAM, parameters={}, action_url=ACTION)
    )
    assert (play.tag, play.text) == ("Play", "https://cdn.example.com/closed.mp3")
    assert record.tag == "Record"
    assert record.get("maxLength") == "600"
    assert record.get("playBeep") == "false"
    assert record.get("transcribe") == "false"
    assert record.get("transcribeCallback") is None
    # A directory store: Twilio reports to the gateway, which saves the recording.
    assert record.get("recordingStatusCallback").startswith("https://gw.example.com/twilio/after")
    assert hangup.tag == "Hangup"


def test_render_voicemail_directory_store_reports_to_voicemail_url(plan):
    decision = decide(plan, "+15550000004")
    _, record, _ = verbs(
        render(decision, stream_url=STREAM, parameters={}, action_url=ACTION, voicemail_url=VM)
    )
    expected = {"from": ["+14085551234"], "route": ["voicemail"], "branch": ["otherwise"],
                "plan": [plan.digest]}  # fmt: skip
    for attribute in ("action", "recordingStatusCallback"):
        url = urlsplit(record.get(attribute))
        assert (url.netloc, url.path) == ("gw.example.com", "/twilio/voicemail")
        assert parse_qs(url.query) == expected
    assert record.get("transcribeCallback") is None  # transcribe: false


def test_render_voicemail_url_store_keeps_its_callbacks(plan):
    decision = after_dial(decide(plan, "+15550000002"), "no-answer")
    _, record, _ = verbs(
        render(decision, stream_url=STREAM, parameters={}, action_url=ACTION, voicemail_url=VM)
    )
    assert record.get("recordingStatusCallback") == "https://crm.example.com/voicemail"
    assert record.get("transcribeCallback") == "https://crm.example.com/voicemail"
    action = urlsplit(record.get("action"))
    assert action.path == "/twilio/voicemail"
    assert parse_qs(action.query)["path"] == ["on_no_answer"]


def test_render_play_loops_then_says(plan):
    play, say = verbs(render(decide(plan, "+15550000005"), stream_url=STREAM, parameters={}))
    assert (play.tag, play.get("loop"), play.text) == (
        "Play",
        "2",
        "https://cdn.example.com/jingle.wav",
    )
    assert (say.tag, say.text) == ("Say", "Goodbye +15550000005")


@pytest.mark.parametrize(
    ("to", "tag", "attrs"),
    [
        ("+15550000006", "Reject", {"reason": "busy"}),
        ("+15550000007", "Hangup", {}),
    ],
)
def test_render_terminal_actions(plan, to, tag, attrs):
    (verb,) = verbs(render(decide(plan, to), stream_url=STREAM, parameters={}))
    assert verb.tag == tag
    assert dict(verb.attrib) == attrs


def test_render_fallback_bot_carries_its_path(plans, engines):
    plan = load(
        plans.write(
            """
            default_route: main
            routes:
              main:
                otherwise:
                  action: bot
                  engine: tone
                  fallback: {action: say, text: "One moment", then: {action: bot, engine: echo}}
            """
        ),
        engines,
    )
    decision = decide(plan, "+15550000001")
    first, say, second = verbs(render(decision, stream_url=STREAM, parameters={}))
    assert (first.tag, say.tag, second.tag) == ("Connect", "Say", "Connect")
    params = {p.get("name"): p.get("value") for p in second.iter("Parameter")}
    assert params["path"] == "fallback.then"
    assert "path" not in {p.get("name") for p in first.iter("Parameter")}
