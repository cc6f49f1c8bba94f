"""The flows shipped under dialplans/flows/: each loads, and each example plan's flow holds a
real conversation (main path and an alternative), driven through the pure runner, no models."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from engine.local.flow import FlowRunner, Reply, load_flow

FLOWS = Path(__file__).resolve().parents[2] / "dialplans" / "flows"
TODAY = date(2026, 3, 10)  # a Tuesday


def runner(name: str, **parameters: str) -> FlowRunner:
    return FlowRunner(load_flow(FLOWS / name), parameters, today=TODAY)


def keys(flow: FlowRunner, digits: str) -> Reply:
    """Type ``digits``; the reply to the last key (the ones before only collect)."""
    *first, last = digits
    for digit in first:
        assert flow.dtmf(digit) is None, f"key {digit} ended the entry early"
    reply = flow.dtmf(last)
    assert reply is not None
    return reply


@pytest.mark.parametrize("path", sorted(FLOWS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_flow_loads(path: Path) -> None:
    flow = load_flow(path)
    assert flow.start in flow.states and flow.name == path.stem


# -- front desk (business-hours.yaml) ----------------------------------------------------------

FRONT_DESK_GREETING = "Riverside Dental, good Tuesday! How can I help you?"
FRONT_DESK_MENU = (
    "I can tell you our opening hours or how to find us, take a message, or put you through "
    "to the front desk."
)


def test_front_desk_answers_hours_and_address_then_says_goodbye() -> None:
    desk = runner("front-desk.yaml", greeting=FRONT_DESK_GREETING, caller="+13475550123")
    opening = desk.start()
    assert opening.lines == (FRONT_DESK_GREETING, FRONT_DESK_MENU)
    assert opening.expect.kind == "intent"
    hours = desk.answer("Hi, what time are you open on Saturday?")
    assert hours.lines == (
        "We're open Monday to Friday from 8:30 to 5:30, and Saturday from 9 to 1. "
        "We're closed on public holidays.",
        "Is there anything else I can help with?",
    )
    where = desk.answer("Yes, where are you located?")  # an answer that names the topic
    assert where.lines[0].startswith("We're at 250 Riverside Drive")
    assert desk.state_name == "anything_else"
    bye = desk.answer("No, that's all, thanks.")
    assert bye.hangup and bye.lines == ("Thanks for calling Riverside Dental. Goodbye!",)
    assert desk.ended


def test_front_desk_takes_a_message_with_a_typed_callback_number() -> None:
    desk = runner("front-desk.yaml", caller="+13475550123")
    assert desk.start().lines[0] == "Thanks for calling Riverside Dental."  # the flow's own
    assert desk.answer("I'd like to leave a message.").lines == (
        "Of course. Who is the message for: the dentist, the hygienist, billing, or the front "
        "desk?",
    )
    assert desk.answer("It's for the dentist.").expect.kind == "name"
    assert desk.answer("My name is Ann Lee.").lines == (
        "Thanks, Ann Lee. Should we call you back on the number you're calling from?",
    )
    assert desk.answer("No.").expect.kind == "digits"
    assert keys(desk, "2125550123#").lines == ("And what would you like the message to say?",)
    confirm = desk.answer("Please call me about my new crown.")
    assert confirm.lines == (
        "So that's a message for the dentist from Ann Lee, and we'll call you back on "
        "2 1 2 5 5 5 0 1 2 3. Shall I pass it on?",
    )
    taken = keys(desk, "1")  # 1 = yes
    assert taken.lines == (
        "Done. The dentist will get your message today.",
        "Is there anything else I can help with?",
    )
    assert desk.values == {
        "recipient": "dentist",
        "name": "Ann Lee",
        "callback": "2125550123",
        "message": "Please call me about my new crown.",
    }
    assert keys(desk, "2").hangup  # 2 = no: goodbye


def test_front_desk_puts_caller_through_to_plans_transfer_target() -> None:
    desk = runner("front-desk.yaml", transfer_to="+12125550177")
    desk.start()
    through = keys(desk, "0")
    assert through.transfer == "+12125550177"
    assert through.lines == ("Let me put you through to the front desk. One moment, please.",)
    default = runner("front-desk.yaml")
    default.start()
    assert default.answer("Can I speak to someone, please?").transfer == "+12125550111"


# -- support (multi-number.yaml) ---------------------------------------------------------------


def test_support_opens_a_technical_ticket() -> None:
    support = runner("support.yaml", greeting="Acme support. What can I help you with?")
    opening = support.start()
    assert opening.lines == (
        "Acme support. What can I help you with?",
        "I can help with billing, a technical problem, or cancelling your service, or put you "
        "through to an agent.",
    )
    account = support.answer("My internet is not working.")
    assert support.state_name == "ask_account" and account.expect.kind == "digits"
    assert support.answer("It's four two seven one.").lines == ("That's 4 2 7 1. Is that right?",)
    assert support.answer("Yes.").lines == ("In a few words, what's going on?",)
    confirm = support.answer("The router keeps restarting every few minutes.")
    assert confirm.lines == (
        "I'll open a ticket about a technical problem for number 4 2 7 1, and a specialist "
        "will call you back within one business day. Shall I go ahead?",
    )
    opened = support.answer("Yes please.")
    assert opened.lines == (
        "Done. Your ticket is open, and we'll be in touch soon.",
        "Is there anything else I can help with?",
    )
    assert support.values["account"] == "4271"
    assert support.values["issue"] == "The router keeps restarting every few minutes."
    bye = support.answer("No thanks.")
    assert bye.hangup and bye.lines == ("Thanks for calling Acme support. Goodbye!",)


def test_support_billing_by_keys_corrects_the_number_and_asks_for_an_agent() -> None:
    support = runner("support.yaml")
    assert support.start().lines[0] == "Thanks for calling Acme support."
    keys(support, "1")  # billing
    assert keys(support, "550#").lines == ("That's 5 5 0. Is that right?",)
    again = keys(support, "2")  # 2 = no: asked again
    assert support.state_name == "ask_account" and again.expect.kind == "digits"
    support.answer("five five zero one")
    support.answer("Yes.")
    confirm = support.answer("I was charged twice this month.")
    assert "a ticket about a billing question for number 5 5 0 1" in confirm.lines[0]
    assert support.answer("No.").lines == (
        "No problem, I won't open it. Would you like to speak to an agent instead?",
    )
    agent = support.answer("Yes.")
    assert agent.transfer == "sip:support@pbx.acme.example"
    assert agent.lines == ("Please hold while I put you through to an agent.",)


def test_support_cancellation_is_acknowledged_before_the_account_number() -> None:
    support = runner("support.yaml")
    support.start()
    reply = support.answer("I want to cancel my subscription.")
    assert reply.lines == (
        "I'm sorry to hear you'd like to leave.",
        "What's your account number, or your ticket number if you already have one?",
    )


# -- the campaign's outbound reminder (campaign-callback.yaml, campaign-call branch) ----------

ANN = {"first_name": "Ann", "appointment": "Tuesday 10 March at 9:30", "direction": "outbound-api"}
REMINDER = (
    "Hello Ann, this is the Lakeside Clinic calling to remind you of your appointment on "
    "Tuesday 10 March at 9:30. If you need to reach us, our number is 312 555 0150."
)


def test_outbound_reminder_greets_contact_by_name_and_confirms() -> None:
    call = runner("campaign-outbound.yaml", **ANN)
    opening = call.start()
    assert opening.lines == (
        REMINDER,
        "Will you be able to make it? You can also say reschedule, or cancel.",
    )
    assert opening.expect.kind == "yes_no"
    done = call.answer("Yes, I'll be there.")
    assert done.hangup and done.lines == (
        "Thank you, your appointment on Tuesday 10 March at 9:30 is confirmed. See you then. "
        "Goodbye!",
    )


def test_outbound_reminder_reschedules_to_a_day_and_time() -> None:
    call = runner("campaign-outbound.yaml", **ANN)
    call.start()
    assert call.answer("I can't make it, sorry.").lines == (
        "Sure. What day would suit you better?",
    )
    assert call.answer("Next Monday.").lines == (
        "And what time on Monday, March 16? We're open from 8 in the morning until 6.",
    )
    check = call.answer("Ten thirty in the morning.")
    assert check.lines == (
        "So that's Monday, March 16 at 10:30 AM. Shall I ask the clinic to move your appointment?",
    )
    done = call.answer("Yes.")
    assert done.hangup and done.lines == (
        "Done. The clinic will confirm your new time for Monday, March 16 at 10:30 AM by text "
        "message. Thank you, goodbye!",
    )
    assert call.values["new_day"] == date(2026, 3, 16)


def test_outbound_reminder_opt_out_is_confirmed_then_hangs_up() -> None:
    call = runner("campaign-outbound.yaml", **ANN)
    call.start()
    assert call.answer("Please stop calling me.").lines == (
        "I understand. Shall we stop calling this number with reminders?",
    )
    done = call.answer("Yes.")
    assert done.hangup and done.lines[0].startswith("Done, we won't call you again.")


def test_outbound_reminder_cancels_by_keys_and_reads_without_contact_columns() -> None:
    call = runner("campaign-outbound.yaml")
    opening = call.start()
    assert opening.lines[0].startswith(
        "Hello there, this is the Lakeside Clinic calling to remind you of your appointment on "
        "the date we have on file."
    )
    assert keys(call, "3").lines == (
        "Just to check: you'd like to cancel your appointment on the date we have on file?",
    )
    done = keys(call, "1")
    assert done.hangup and done.lines[0].startswith("Your appointment is cancelled.")


def test_outbound_reminder_silence_leaves_the_number_for_a_voicemail() -> None:
    call = runner("campaign-outbound.yaml", **ANN)
    call.start()
    assert call.no_input().lines[0] == "Are you still there?"
    end = call.no_input()
    assert end.hangup and end.lines == (
        "If you need to change your appointment, please call us on 312 555 0150. Goodbye!",
    )


# -- a call back to the campaign's number (campaign-callback.yaml) ------------------------------

CALLBACK_GREETING = "Thanks for calling back. This is the Lakeside Clinic reminder line."


def test_callback_recognises_returned_call_and_reschedules() -> None:
    call = runner("campaign-callback.yaml", greeting=CALLBACK_GREETING, caller="+13125550170")
    assert call.start().lines == (CALLBACK_GREETING, "How can I help you?")
    explained = call.answer("Hi, I'm returning your call.")
    assert call.state_name == "explain"
    assert explained.lines[0].startswith("Thanks for getting back to us. We called to remind you")
    assert call.answer("I need to reschedule.").expect.kind == "name"
    assert call.answer("It's Bob Jones.").lines == (
        "Thanks, Bob Jones. What day would suit you better?",
    )
    call.answer("Thursday")
    check = call.answer("2 pm")
    assert check.lines == (
        "So that's Thursday, March 12 at 2 PM, for Bob Jones. Shall I ask the clinic to move it?",
    )
    done = call.answer("Yes.")
    assert done.lines == (
        "Done. The clinic will confirm your new time by text message.",
        "Is there anything else I can help with?",
    )
    bye = call.answer("No.")
    assert bye.hangup and bye.lines == ("Thanks for calling the Lakeside Clinic. Goodbye!",)


def test_callback_confirms_by_keys_then_transfers_to_front_desk() -> None:
    call = runner("campaign-callback.yaml")
    assert call.start().lines[0] == "Thanks for calling the Lakeside Clinic reminder line."
    assert keys(call, "1").lines == ("Happy to. What name is the appointment under?",)
    call.answer("Ann Lee")
    confirmed = call.answer("March 12th")
    assert confirmed.lines[0] == (
        "Thank you. Your appointment on Thursday, March 12 is confirmed. We look forward to "
        "seeing you."
    )
    through = call.answer("Actually, can I talk to the front desk?")
    assert through.transfer == "+13125550100"


def test_callback_stops_reminder_calls() -> None:
    call = runner("campaign-callback.yaml")
    call.start()
    assert call.answer("Please take me off your list.").lines == (
        "I understand. Shall we stop calling your number with reminders?",
    )
    assert call.answer("Yes.").lines[0] == "Done, we won't call you with reminders again."


@pytest.mark.parametrize(
    ("name", "say"),
    [
        ("support.yaml", "I'm stuck with my internet"),
        ("front-desk.yaml", "I need to leave a message"),
    ],
)
def test_shipped_flows_reach_a_person_or_goodbye_from_any_question(name: str, say: str) -> None:
    flow = runner(name)
    flow.start()
    flow.answer(say)  # now at a question that wants a number or a name, not these words
    assert flow.waiting
    assert flow.answer("Can I just talk to a real person please?").transfer
    flow = runner(name)
    flow.start()
    flow.answer(say)
    assert keys(flow, "0").transfer  # key 0 works there too
    flow = runner(name)
    flow.start()
    flow.answer(say)
    assert flow.answer("Never mind, that's all, goodbye.").hangup
