"""Scripted conversations: the YAML flow format, its loader, and the pure runner.

A flow is a set of named states. Each state may set variables, say lines, ask a question and
wait for the answer, then move on (``next``, or ``on`` by answer), or end the call (``hangup``,
``transfer``). Answers are read by kind (``expect``: text, yes_no, number, digits, date, time,
name, intent); keypad digits are an alternative input everywhere. Every question has no-input
and no-match handling (re-prompt, then give up to a state), "say that again" repeats it, and
"hang on a second" gets ``hold.prompt`` and a longer wait (``hold.after``) at the same question.
``anywhere`` lists answers that work at every question ("an agent", key 0), each to its state.

    version: 1
    name: booking
    start: welcome
    variables: {greeting: "Thanks for calling."}   # a call parameter of the same name wins
    states:
      welcome: {say: "{greeting}", next: ask_party}
      ask_party:
        ask: "How many people?"
        expect: number
        store: party
        next: confirm
      confirm:
        ask: "A table for {party}, is that right?"
        expect: yes_no
        on: {yes: done, no: ask_party}
      done: {say: "You're booked. Goodbye!", hangup: true}

What a call settles is its *results* (:meth:`FlowRunner.results`): every ``store``d answer
and every variable a state's ``set`` assigned (``set: {outcome: booked}``). The engine reports
them to the gateway, which keeps them in the call record; campaigns export them, and the result
``do_not_call: "yes"`` puts the number called on the do-not-call list.

The runner is pure and synchronous: it takes the caller's words (or keys) and returns a
:class:`Reply` saying what to speak and what happens next. It reads no clock: dates are parsed
relative to the ``today`` it is given.

Errors: :class:`FlowInvalid` (a ``ValueError``) lists every problem of a flow file, each with
the state and field it concerns; it is raised at load, never during a call.
"""

from __future__ import annotations

import re
import string
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from engine.files import read_regular_file
from engine.local import nlu

__all__ = [
    "CALL_VARIABLES",
    "Ending",
    "Flow",
    "FlowInvalid",
    "FlowRunner",
    "Reply",
    "load_flow",
    "parse_flow",
]

#: Variables every call has (from its context), usable in any flow's text.
CALL_VARIABLES = frozenset(
    {"caller", "called", "direction", "greeting", "prompt", "voice", "language", "route"}
)
ExpectKind = Literal["text", "yes_no", "number", "digits", "date", "time", "name", "intent"]
_MAX_CHAIN = 32  # states entered in one step without waiting: a loop guard


class FlowInvalid(ValueError):
    """A flow file that cannot run; ``problems`` lists each reason."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


def _lines(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


Lines = Annotated[list[str], BeforeValidator(_lines)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Retry(_Strict):
    """What to do when a question gets no answer (no_input) or one that does not fit (no_match)."""

    prompt: Lines = Field(default_factory=list)
    retries: int = Field(2, ge=0, le=10)
    #: Seconds of caller silence after the question finished playing (no_input only).
    after: float = Field(6.0, gt=0, le=120)
    #: State entered when the retries are used up; unset: hang up after the prompt.
    then: str | None = None


class State(_Strict):
    set: dict[str, str] = Field(default_factory=dict)
    say: Lines = Field(default_factory=list)
    ask: Lines = Field(default_factory=list)
    #: Said instead of ``ask`` when the question is asked again after a no-match or no-input.
    reprompt: Lines = Field(default_factory=list)
    expect: ExpectKind = "text"
    store: str | None = None
    intents: dict[str, list[str]] = Field(default_factory=dict)
    #: Keypad alternatives: digit -> answer key (intent name, or yes/no).
    dtmf: dict[str, str] = Field(default_factory=dict)
    #: For number/digits answers typed on the keypad: how many digits end the entry ('#' does).
    max_digits: int = Field(8, ge=1, le=32)
    min: int | None = None
    max: int | None = None
    on: dict[str, str] = Field(default_factory=dict)
    next: str | None = None
    hangup: bool = False
    transfer: str | None = None
    no_input: Retry | None = None
    no_match: Retry | None = None


class Hold(_Strict):
    """What the bot says when asked to wait ("hang on a second"), and how long it then waits
    before its no-input handling starts."""

    prompt: Lines = Field(default_factory=lambda: ["Sure, take your time."])
    after: float = Field(30.0, gt=0, le=300)


class Anywhere(_Strict):
    """Answers that work at every question ("an agent", "goodbye"), each leading to a state.

    A question's own answers come first; these are tried when the words fit none of them (so
    an open question, ``expect: text``, keeps whatever is said, a message with "bye" in it).
    """

    intents: dict[str, list[str]] = Field(default_factory=dict)
    #: Keypad alternatives: digit -> intent (a question's own keys come first).
    dtmf: dict[str, str] = Field(default_factory=dict)
    on: dict[str, str] = Field(default_factory=dict)


class Flow(_Strict):
    version: Literal[1] = 1
    name: str
    description: str = ""
    start: str
    variables: dict[str, str] = Field(default_factory=dict)
    #: Call parameters (beyond :data:`CALL_VARIABLES`) this flow's text may use.
    parameters: list[str] = Field(default_factory=list)
    #: Short phrases played at once when an answer needs rendering first.
    acknowledgements: list[str] = Field(default_factory=lambda: ["Okay.", "Got it.", "Alright."])
    no_input: Retry = Retry(prompt=["Are you still there?"])
    no_match: Retry = Retry(prompt=["Sorry, I didn't get that."])
    hold: Hold = Hold()
    anywhere: Anywhere = Anywhere()
    states: dict[str, State]

    def texts(self) -> list[str]:
        """Every line the flow can speak, unrendered."""
        out = list(self.acknowledgements) + list(self.hold.prompt)
        for retry in (self.no_input, self.no_match):
            out.extend(retry.prompt)
        for state in self.states.values():
            out.extend(state.say + state.ask + state.reprompt)
            for retry in (state.no_input, state.no_match):
                if retry is not None:
                    out.extend(retry.prompt)
        return out

    def fixed_texts(self) -> list[str]:
        """Lines whose words are known at load (no per-call variable): rendered once, cached."""
        out = []
        for text in self.texts():
            names = _placeholders(text)
            if all(n in self.variables for n in names):
                out.append(text.format_map(self.variables) if names else text)
        return list(dict.fromkeys(out))


def _placeholders(text: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(text) if name]


def _check(flow: Flow) -> list[str]:
    """Problems pydantic cannot see: dangling state names, unknown variables, bad answers."""
    problems: list[str] = []
    names = set(flow.states)
    known_vars = set(flow.variables) | CALL_VARIABLES | set(flow.parameters)
    for state in flow.states.values():
        known_vars |= set(state.set)
        if state.store:
            known_vars.add(state.store)

    def target(where: str, name: str | None) -> None:
        if name is not None and name not in names:
            close = [n for n in names if n.startswith(name[:3])]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{where}: no state named {name!r}{hint}")

    def texts(where: str, lines: list[str]) -> None:
        for line in lines:
            try:
                used = _placeholders(line)
            except ValueError as exc:
                problems.append(f"{where}: {exc} in {line!r}")
                continue
            for var in used:
                if var not in known_vars:
                    problems.append(f"{where}: unknown variable {{{var}}} in {line!r}")

    target("start", flow.start)
    for retry_name, retry in (("no_input", flow.no_input), ("no_match", flow.no_match)):
        target(f"{retry_name}.then", retry.then)
        texts(retry_name, retry.prompt)
    texts("hold", flow.hold.prompt)
    anywhere = flow.anywhere
    for intent in anywhere.intents:
        if intent not in anywhere.on:
            problems.append(f"anywhere.intents.{intent}: no state for it in anywhere.on")
    for key, dest in anywhere.on.items():
        target(f"anywhere.on.{key}", dest)
        if key not in anywhere.intents:
            problems.append(f"anywhere.on.{key}: not one of anywhere.intents")
    for digit, key in anywhere.dtmf.items():
        if digit not in "0123456789*#" or len(digit) != 1:
            problems.append(f"anywhere.dtmf: {digit!r} is not a key")
        if key not in anywhere.intents:
            problems.append(f"anywhere.dtmf.{digit}: {key!r} is not one of anywhere.intents")
    for name, st in flow.states.items():
        where = f"states.{name}"
        texts(where, st.say + st.ask + st.reprompt + list(st.set.values()))
        target(f"{where}.next", st.next)
        for key, dest in st.on.items():
            target(f"{where}.on.{key}", dest)
        for retry_name, retry in (("no_input", st.no_input), ("no_match", st.no_match)):
            if retry is not None:
                target(f"{where}.{retry_name}.then", retry.then)
                texts(f"{where}.{retry_name}", retry.prompt)
        endings = sum((bool(st.ask), st.hangup, st.transfer is not None))
        if endings > 1:
            problems.append(f"{where}: ask, hangup and transfer exclude each other")
        if not st.ask and (st.on or st.intents or st.dtmf or st.store):
            problems.append(f"{where}: on/intents/dtmf/store need an 'ask'")
        if not st.ask and not st.hangup and st.transfer is None and st.next is None:
            problems.append(f"{where}: nothing follows (give it next, ask, hangup or transfer)")
        if st.ask and st.next is None and not st.on:
            problems.append(f"{where}: an ask needs 'next' or 'on' for its answers")
        if st.expect == "intent" and not st.intents:
            problems.append(f"{where}: expect: intent needs 'intents'")
        allowed = (
            set(st.intents) | {st.expect} | ({"yes", "no"} if st.expect == "yes_no" else set())
        )
        for key in st.on:
            if key not in allowed:
                problems.append(
                    f"{where}.on.{key}: not an answer of this state ({sorted(allowed)})"
                )
        for digit, key in st.dtmf.items():
            if digit not in "0123456789*#" or len(digit) != 1:
                problems.append(f"{where}.dtmf: {digit!r} is not a key")
            if key not in allowed:
                problems.append(f"{where}.dtmf.{digit}: {key!r} is not an answer of this state")
    return problems


def parse_flow(data: Any, source: str = "<flow>") -> Flow:
    """Validate a flow from parsed YAML; raises :class:`FlowInvalid` with every problem."""
    if not isinstance(data, Mapping):
        raise FlowInvalid(source, ["a flow is a mapping with name, start and states"])
    try:
        flow = Flow.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in err['loc']) or 'flow'}: {err['msg']}"
            for err in exc.errors()
        ]
        raise FlowInvalid(source, problems) from None
    problems = _check(flow)
    if problems:
        raise FlowInvalid(source, problems)
    return flow


#: Largest flow file read, as for a dial plan file: a hand-written flow is a few kilobytes, and
#: the dial plan's check loads every flow it names on each reload.
MAX_FLOW_BYTES = 1024 * 1024
#: Deepest nesting of lists and mappings (a real flow nests about five levels); PyYAML composes
#: recursively, so 100,000 ``[`` would otherwise end in RecursionError.
MAX_DEPTH = 64
#: Most values one file may expand to, aliases counted each time they are used: validation walks
#: the expanded data, so a "billion laughs" of nested aliases would otherwise stall it.
MAX_NODES = 100_000


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. YAML 1.1 also reads yes/no/on/off as booleans, which
    would turn a flow's ``on: {yes: ..., no: ...}`` into ``{True: {True: ..., False: ...}}``.
    Composition stops at :data:`MAX_DEPTH` levels."""

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(f"nested more than {MAX_DEPTH} levels deep", self.peek_event())
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class _Refused(Exception):
    """A bound of the loader was passed, at ``where`` (a node or event with a start mark)."""

    def __init__(self, reason: str, where: yaml.Node | yaml.Event) -> None:
        mark = where.start_mark
        super().__init__(f"line {mark.line + 1}: {reason}")


def _expanded_size(root: yaml.Node) -> int:
    """How many values ``root`` stands for once its aliases are expanded; refuses a recursive
    alias and stops counting past :data:`MAX_NODES`. Each node is sized once (by identity),
    so an alias bomb is measured in the time of its text, not of its expansion."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            if sizes[key] < 0:
                raise _Refused("an alias refers to a value that contains it", node)
            return sizes[key]
        sizes[key] = -1
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k) + size(v) for k, v in node.value)
        if total > MAX_NODES:
            raise _Refused(f"expands to more than {MAX_NODES} values", node)
        sizes[key] = total
        return total

    return size(root)


def load_flow(path: str | Path) -> Flow:
    """Read and validate a flow file; :class:`FlowInvalid` if it cannot run, or
    :class:`engine.files.FileRefused` (an OSError) if it cannot be read.

    The file must be a regular file of at most :data:`MAX_FLOW_BYTES` (the same rule as a dial
    plan's files, :func:`engine.files.read_regular_file`), in UTF-8, nested at most
    :data:`MAX_DEPTH` levels and expanding to at most :data:`MAX_NODES` values.
    """
    source = str(path)
    try:
        text = read_regular_file(path, MAX_FLOW_BYTES).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FlowInvalid(source, [f"not UTF-8 text: {exc.reason}"]) from None
    try:
        loader = _Loader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _expanded_size(node)
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except _Refused as exc:
        raise FlowInvalid(source, [str(exc)]) from None
    except yaml.YAMLError as exc:
        raise FlowInvalid(source, [f"not valid YAML: {exc}"]) from None
    return parse_flow(data, source)


# ------------------------------------------------------------------------------ running


@dataclass(frozen=True, slots=True)
class Ending:
    """The last item of a streamed reply that ends the call: hang up, or transfer to
    ``transfer``, once everything before it has been spoken."""

    hangup: bool = False
    transfer: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """What the bot does next: speak ``lines`` in order, then end the call or wait for an answer.

    ``more`` is text still to come, streamed in pieces (a chat model's reply), spoken after
    ``lines``; an :class:`Ending` among them ends the call after the text. ``question`` is the
    text the caller is answering (it helps recognition); ``expect`` how to read the answer;
    ``no_input_after`` seconds of silence after the speech before re-prompting (None: not
    waiting for anything).
    """

    lines: tuple[str, ...] = ()
    hangup: bool = False
    transfer: str | None = None
    expect: nlu.Expectation = nlu.Expectation()
    question: str = ""
    no_input_after: float | None = None
    more: AsyncIterator[str | Ending] | None = None

    @property
    def ends_call(self) -> bool:
        return self.hangup or self.transfer is not None


class _Vars(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


@dataclass
class FlowRunner:
    """One call's position in a :class:`Flow`. Pure: feed it answers, get :class:`Reply`."""

    flow: Flow
    parameters: Mapping[str, str] = field(default_factory=dict)
    today: date = field(default_factory=date.today)

    def __post_init__(self) -> None:
        self.vars = _Vars(self.flow.variables)
        self.vars.update({k: v for k, v in self.parameters.items() if v})
        self.state_name = self.flow.start
        self.waiting = False
        self.ended = False
        self._no_input = 0
        self._no_match = 0
        self._keys = ""
        #: Values read from answers, by the state's ``store`` name (typed: int, date, bool...).
        self.values: dict[str, object] = {}
        #: Variables a state's ``set`` has assigned in this call (outcomes the flow reached).
        self._assigned: set[str] = set()

    @property
    def state(self) -> State:
        return self.flow.states[self.state_name]

    @property
    def acknowledgements(self) -> tuple[str, ...]:
        return tuple(self.render(a) for a in self.flow.acknowledgements)

    def heard(self, said: str, heard: str) -> None:
        """The caller heard only ``heard`` of ``said``; a flow's state does not depend on it."""

    def snapshot(self) -> object:
        """Where the flow stands, to go back to if the answer just given turns out unfinished."""
        return (
            self.state_name, dict(self.vars), dict(self.values), set(self._assigned),
            self.waiting, self.ended, self._no_input, self._no_match,
        )  # fmt: skip

    def restore(self, snapshot: object) -> None:
        """Go back to a :meth:`snapshot` (the caller was still talking: re-read the answer)."""
        state, variables, values, assigned, waiting, ended, no_input, no_match = snapshot  # type: ignore[misc]
        self.state_name, self.waiting, self.ended = state, waiting, ended
        self.vars = _Vars(variables)
        self.values = dict(values)
        self._assigned = set(assigned)
        self._no_input, self._no_match, self._keys = no_input, no_match, ""

    def results(self) -> dict[str, str]:
        """What the call has settled: every stored answer in a form programs read (dates
        ISO 8601, times 24-hour, yes/no), and every variable a ``set`` assigned."""
        out = {name: _result_text(value) for name, value in self.values.items()}
        out.update((name, self.vars[name]) for name in sorted(self._assigned))
        return out

    def render(self, text: str) -> str:
        return re.sub(r"\s+", " ", text.format_map(self.vars)).strip()

    def start(self) -> Reply:
        """Enter the start state: the greeting and the first question."""
        return self._enter(self.flow.start, [])

    def answer(self, text: str, *, question_heard: bool = True) -> Reply:
        """The caller said ``text`` while the bot waited (or after it interrupted the question).

        ``question_heard`` False (the caller cut in before the question was spoken) turns a
        no-match into a plain re-ask: the caller cannot be blamed for not answering it.
        """
        if self.ended:
            return Reply()
        st = self.state
        if not self.waiting:
            return Reply()
        if nlu.is_repeat_request(text):
            return self._ask_again([], reprompt=False)
        rest = nlu.without_hold_request(text)
        if rest is not None and self._read(st, rest)[0] is None:
            # "Hang on a second": the same question, more patience, nothing counted.
            hold = self.flow.hold
            reply = self._waiting_reply([self.render(p) for p in hold.prompt])
            return replace(reply, no_input_after=hold.after)
        key, value = self._read(st, text)
        if key is None:
            anywhere = nlu.match_intent(text, self.flow.anywhere.intents)
            if anywhere is not None:
                return self._go_anywhere(anywhere)
            if not question_heard:
                return self._ask_again([], reprompt=False)
            return self._no_match_reply()
        return self._accept(st, key, value)

    def dtmf(self, digit: str) -> Reply | None:
        """A key press: a reply once the keys make an answer, else None (still collecting)."""
        if self.ended or not self.waiting:
            return None
        st = self.state
        if digit in st.dtmf:
            key = st.dtmf[digit]
            value: object = key == "yes" if st.expect == "yes_no" else key
            return self._accept(st, key, value)
        if st.expect == "yes_no" and digit in "12":
            return self._accept(st, "yes" if digit == "1" else "no", digit == "1")
        if st.expect in ("number", "digits"):
            if digit == "*":
                self._keys = ""
                return None
            if digit != "#":
                self._keys += digit
            if digit == "#" or len(self._keys) >= st.max_digits:
                keys, self._keys = self._keys, ""
                if not keys:
                    return self._no_match_reply()
                key, val = self._read(st, " ".join(keys) if st.expect == "digits" else keys)
                return self._accept(st, key, val) if key else self._no_match_reply()
            return None
        if digit in self.flow.anywhere.dtmf:
            return self._go_anywhere(self.flow.anywhere.dtmf[digit])
        return self._no_match_reply()

    def no_input(self) -> Reply:
        """The caller said nothing for the question's no-input time."""
        if self.ended or not self.waiting:
            return Reply()
        retry = self.state.no_input or self.flow.no_input
        self._no_input += 1
        if self._no_input > retry.retries:
            return self._give_up(retry)
        return self._ask_again([self.render(p) for p in retry.prompt], reprompt=True)

    # -- internals ---------------------------------------------------------------------------

    def _read(self, st: State, text: str) -> tuple[str | None, object]:
        """(answer key, value) for ``text`` under the state's expectation; key None: no match."""
        match st.expect:
            case "yes_no":
                yn = nlu.parse_yes_no(text)
                intent = nlu.match_intent(text, st.intents) if st.intents else None
                if intent is not None:
                    return intent, intent
                return (None, None) if yn is None else ("yes" if yn else "no", yn)
            case "intent":
                intent = nlu.match_intent(text, st.intents)
                return intent, intent
            case "number":
                n = nlu.parse_number(text)
                if n is None or (st.min is not None and n < st.min):
                    return None, None
                if st.max is not None and n > st.max:
                    return None, None
                return "number", n
            case "digits":
                d = nlu.parse_digits(text)
                return ("digits", d) if d else (None, None)
            case "date":
                day = nlu.parse_date(text, self.today)
                return ("date", day) if day else (None, None)
            case "time":
                t = nlu.parse_time(text)
                return ("time", t) if t else (None, None)
            case "name":
                name = nlu.parse_name(text)
                return ("name", name) if name else (None, None)
            case _:
                clean = text.strip()
                intent = nlu.match_intent(clean, st.intents) if st.intents else None
                return (intent or "text", clean) if nlu.words(clean) else (None, None)

    def _leave_question(self) -> None:
        """The question is answered (or left): its retry counts start again at the next."""
        self.waiting = False
        self._no_match = 0
        self._no_input = 0

    def _accept(self, st: State, key: str | None, value: object) -> Reply:
        self._leave_question()
        if st.store:
            self.values[st.store] = value
            # A digit string reads back digit by digit ("4 2 7"), not as a number.
            spoken = " ".join(str(value)) if st.expect == "digits" else _spoken(value)
            self.vars[st.store] = spoken
        dest = st.on.get(key or "", st.next)
        if dest is None:
            return self._no_match_reply()
        return self._enter(dest, [])

    def _go_anywhere(self, intent: str) -> Reply:
        """An answer that works at every question: leave this one for the intent's state."""
        self._leave_question()
        return self._enter(self.flow.anywhere.on[intent], [])

    def _no_match_reply(self) -> Reply:
        retry = self.state.no_match or self.flow.no_match
        self._no_match += 1
        if self._no_match > retry.retries:
            return self._give_up(retry)
        return self._ask_again([self.render(p) for p in retry.prompt], reprompt=True)

    def _give_up(self, retry: Retry) -> Reply:
        self.waiting = False
        lines = [self.render(p) for p in retry.prompt]
        if retry.then is None:
            self.ended = True
            return Reply(tuple(lines), hangup=True)
        return self._enter(retry.then, [])

    def _ask_again(self, lead: list[str], *, reprompt: bool) -> Reply:
        st = self.state
        question = st.reprompt if reprompt and st.reprompt else st.ask
        return self._waiting_reply(lead + [self.render(q) for q in question])

    def _waiting_reply(self, lines: list[str]) -> Reply:
        st = self.state
        self.waiting = True
        self._keys = ""
        retry = st.no_input or self.flow.no_input
        expect = nlu.Expectation(st.expect, {k: tuple(v) for k, v in st.intents.items()} or None)
        question = " ".join(self.render(q) for q in st.ask)
        spoken = tuple(line for line in lines if line)
        return Reply(spoken, expect=expect, question=question, no_input_after=retry.after)

    def _enter(self, name: str, lines: list[str]) -> Reply:
        for _ in range(_MAX_CHAIN):
            self.state_name = name
            st = self.state
            for var, template in st.set.items():
                self.vars[var] = self.render(template)
                self._assigned.add(var)
            lines.extend(self.render(s) for s in st.say)
            if st.ask:
                return self._waiting_reply(lines + [self.render(a) for a in st.ask])
            if st.hangup or st.transfer is not None:
                self.ended = True
                target = self.render(st.transfer) if st.transfer else None
                return Reply(tuple(line for line in lines if line), st.hangup, target)
            assert st.next is not None  # checked at load
            name = st.next
        raise RuntimeError(f"flow {self.flow.name!r} loops without asking anything at {name!r}")


def _result_text(value: object) -> str:
    """A stored answer for the call record: ISO dates, 24-hour times, yes/no, plain digits."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat(timespec="minutes")
    return str(value)


def _spoken(value: object) -> str:
    """How a stored answer reads back in a prompt ("Friday, March 13", "4", "yes")."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return f"{value:%A, %B} {value.day}"
    if hasattr(value, "strftime"):
        return value.strftime("%-I:%M %p").replace(":00", "")  # type: ignore[union-attr]
    return str(value)
