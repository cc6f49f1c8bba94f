"""Scripted flows: the shipped demo, transitions, DTMF, no-input/no-match, load errors."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from engine.local.flow import FlowInvalid, FlowRunner, load_flow, parse_flow

DEMO = Path(__file__).resolve().parents[2] / "dialplans" / "flows" / "demo.yaml"
TODAY = date(2026, 3, 10)


@pytest.fixture
def demo() -> FlowRunner:
    return FlowRunner(load_flow(DEMO), {"caller": "+15005550006"}, today=TODAY)


def test_flow_demo_books_a_table_with_confirmation(demo: FlowRunner) -> None:
    opening = demo.start()
    assert opening.lines == (
        "Thanks for calling Luigi's.",
        "Would you like to book a table, or check on an order?",
    )
    assert opening.expect.kind == "intent" and opening.no_input_after == 7.0
    assert demo.answer("I'd like to book a table please").expect.kind == "name"
    assert demo.answer("My name is Anna Smith.").lines == (
        "Thanks, Anna Smith. What day would you like to come in?",
    )
    assert demo.answer("Friday").expect.kind == "number"
    confirm = demo.answer("For.")  # the recogniser's spelling of a lone "four"
    assert confirm.lines == (
        "So that's a table for 4 on Friday, March 13, under Anna Smith. Is that right?",
    )
    assert demo.values == {"name": "Anna Smith", "date": date(2026, 3, 13), "party": 4}
    done = demo.answer("Yes, that's right.")
    assert done.lines[0] == "Perfect, you're all set. We look forward to seeing you."
    goodbye = demo.answer("No, thanks.")
    assert goodbye.hangup and goodbye.lines == ("Thanks for calling Luigi's. Goodbye!",)
    assert demo.ended


def test_flow_demo_answers_an_order_status_by_voice_and_keys(demo: FlowRunner) -> None:
    demo.start()
    assert demo.answer("Hello, I would like to check on my order, please.").expect.kind == "digits"
    status = demo.answer("It is order number four two seven.")
    assert status.lines[0].startswith("Thanks. Order 4 2 7 is out for delivery")
    again = FlowRunner(load_flow(DEMO), today=TODAY)
    again.start()
    assert again.dtmf("2") is not None  # 2 = an order, at the menu
    assert again.dtmf("4") is None and again.dtmf("2") is None  # collecting digits
    typed = again.dtmf("#")
    assert typed is not None and "Order 4 2 is out" in typed.lines[0]


def test_flow_no_match_reprompts_then_gives_up(demo: FlowRunner) -> None:
    demo.start()
    first = demo.answer("purple elephants")
    assert first.lines == (
        "Sorry, I didn't quite get that.",
        "You can say book a table, or check an order. Or press 1 to book, and 2 for an order.",
    )
    demo.answer("purple elephants")
    last = demo.answer("purple elephants")  # retries used up: the flow's no_match.then
    assert last.transfer == "+15005550100"


def test_flow_anywhere_answers_work_at_every_question(demo: FlowRunner) -> None:
    demo.start()
    demo.answer("I'd like to book a table")
    # A name question takes any words, but "an operator" is not a name.
    to_agent = demo.answer("Can I speak to an operator?")
    assert to_agent.transfer == "+15005550100"
    keyed = FlowRunner(load_flow(DEMO), today=TODAY)
    keyed.start()
    keyed.answer("book a table")
    keyed.answer("Anna Smith")
    assert keyed.dtmf("0").transfer == "+15005550100"  # 0 at the date question
    leaving = FlowRunner(load_flow(DEMO), today=TODAY)
    leaving.start()
    leaving.answer("my order")
    bye = leaving.answer("Actually, that's all. Bye.")  # no digits: the order question's no-match
    assert bye.hangup and bye.lines == ("Thanks for calling Luigi's. Goodbye!",)


def test_flow_a_questions_own_answers_come_before_anywhere(demo: FlowRunner) -> None:
    demo.start()
    demo.answer("check my order")
    demo.answer("four two seven")
    # "No" answers the yes/no question; "bye" is not needed to end the call.
    assert demo.answer("No, bye.").hangup
    assert demo.values["order"] == "427"


def test_flow_asked_to_wait_waits_at_the_same_question(demo: FlowRunner) -> None:
    demo.start()
    demo.answer("check on my order")
    hold = demo.answer("One second.")  # not the number 1
    assert hold.lines == ("Sure, take your time.",)
    assert hold.no_input_after == 30.0 and hold.expect.kind == "digits"
    status = demo.answer("Okay, it's four two seven.")
    assert status.lines[0].startswith("Thanks. Order 4 2 7 is out for delivery")
    cut_in = demo.answer("Sorry, actually, can you hold on a second?")  # at "anything else?"
    assert cut_in.lines == ("Sure, take your time.",) and cut_in.expect.kind == "yes_no"
    assert demo.answer("No, thanks.").hangup


def test_flow_an_answer_with_a_request_to_wait_is_still_an_answer(demo: FlowRunner) -> None:
    demo.start()
    demo.answer("check on my order")
    status = demo.answer("Hang on, it is four two seven.")
    assert status.lines[0].startswith("Thanks. Order 4 2 7 is out for delivery")


def test_flow_no_input_reprompts_then_says_goodbye(demo: FlowRunner) -> None:
    demo.start()
    assert demo.no_input().lines[0] == "Are you still there?"
    demo.no_input()
    final = demo.no_input()
    assert final.hangup and final.lines[-1] == "Thanks for calling Luigi's. Goodbye!"


def test_flow_repeat_request_asks_again_without_counting(demo: FlowRunner) -> None:
    demo.start()
    again = demo.answer("Sorry, can you say that again?")
    assert again.lines == ("Would you like to book a table, or check on an order?",)
    demo.answer("?!")
    demo.answer("?!")
    assert not demo.ended  # two no-matches: the repeat did not count as a third


def test_flow_unheard_question_is_asked_again_not_blamed(demo: FlowRunner) -> None:
    demo.start()
    reply = demo.answer("purple elephants", question_heard=False)
    assert reply.lines == ("Would you like to book a table, or check on an order?",)


def test_flow_snapshot_takes_an_answer_back(demo: FlowRunner) -> None:
    demo.start()
    before = demo.snapshot()
    demo.answer("book")
    assert demo.state_name == "ask_name"
    demo.restore(before)
    assert demo.state_name == "menu" and demo.waiting


def test_flow_call_parameters_replace_variables() -> None:
    runner = FlowRunner(load_flow(DEMO), {"greeting": "Good evening from Luigi's."})
    assert runner.start().lines[0] == "Good evening from Luigi's."


def test_flow_fixed_texts_exclude_per_call_ones() -> None:
    texts = load_flow(DEMO).fixed_texts()
    assert "Thanks for calling Luigi's." in texts  # {greeting} from the flow's variables
    assert "And how many people will be joining?" in texts
    assert not any("{" in t for t in texts)
    assert not any(t.startswith("Thanks, ") for t in texts)  # has {name}


def test_flow_yaml_yes_and_on_keys_stay_strings(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(
        "name: t\nstart: q\nstates:\n"
        "  q: {ask: 'Ok?', expect: yes_no, on: {yes: a, no: b}}\n"
        "  a: {say: 'Yes.', hangup: true}\n  b: {say: 'No.', hangup: true}\n"
    )
    runner = FlowRunner(load_flow(path))
    runner.start()
    assert runner.answer("nope").lines == ("No.",)


def test_flow_invalid_lists_every_problem() -> None:
    with pytest.raises(FlowInvalid) as caught:
        parse_flow(
            {
                "name": "broken",
                "start": "welcom",
                "states": {
                    "welcome": {"say": "Hi {nobody}", "next": "missing"},
                    "q": {"ask": "Which?", "expect": "intent"},
                    "r": {"say": "x", "hangup": True, "transfer": "+1"},
                    "s": {"ask": "Ok?", "expect": "yes_no", "on": {"maybe": "q"}},
                },
            },
            "broken.yaml",
        )
    problems = "\n".join(caught.value.problems)
    assert "start: no state named 'welcom'" in problems
    assert "unknown variable {nobody}" in problems
    assert "states.welcome.next: no state named 'missing'" in problems
    assert "expect: intent needs 'intents'" in problems
    assert "ask, hangup and transfer exclude each other" in problems
    assert "states.s.on.maybe" in problems
    with pytest.raises(FlowInvalid) as anywhere:
        parse_flow(
            {
                "name": "x",
                "start": "a",
                "anywhere": {"intents": {"agent": ["agent"]}, "dtmf": {"x": "bye"}},
                "states": {"a": {"say": "Hi.", "hangup": True}},
            }
        )
    assert set(anywhere.value.problems) == {
        "anywhere.intents.agent: no state for it in anywhere.on",
        "anywhere.dtmf: 'x' is not a key",
        "anywhere.dtmf.x: 'bye' is not one of anywhere.intents",
    }
    with pytest.raises(FlowInvalid, match="unknown_key|Extra inputs"):
        parse_flow({"name": "x", "start": "a", "states": {"a": {"hangup": True, "unknown_key": 1}}})


def test_flow_results_are_stored_answers_in_plain_form_and_outcomes_set() -> None:
    flow = parse_flow(
        {
            "version": 1, "name": "visit", "start": "day",
            "states": {
                "day": {"ask": "Which day?", "expect": "date", "store": "day", "next": "at"},
                "at": {"ask": "What time?", "expect": "time", "store": "at", "next": "sure"},
                "sure": {"ask": "Sure?", "expect": "yes_no", "store": "sure",
                         "on": {"yes": "booked", "no": "day"}},
                "booked": {"set": {"outcome": "booked"}, "say": "Booked.", "hangup": True},
            },
        }
    )  # fmt: skip
    runner = FlowRunner(flow, today=TODAY)
    runner.start()
    assert runner.results() == {}
    runner.answer("Friday")
    before_time = runner.snapshot()
    runner.answer("half past two in the afternoon")
    assert runner.results() == {"day": "2026-03-13", "at": "14:30"}
    runner.restore(before_time)  # the answer was taken back: so is its result
    assert runner.results() == {"day": "2026-03-13"}
    runner.answer("3 pm")
    runner.answer("Yes.")
    assert runner.results() == {
        "day": "2026-03-13", "at": "15:00", "sure": "yes", "outcome": "booked"
    }  # fmt: skip
