"""Call-control tools a hosted model may call, and what each call becomes.

Hosted speech models act through function calls. Four map onto the engine interface's events:
``end_call`` -> ``Hangup``, ``transfer_call`` -> ``Transfer``, ``send_dtmf`` -> ``SendDtmf``,
``record_result`` -> ``Result``; the gateway carries them out or keeps them. A transfer may only
go to a number the dial plan lists in the bot's ``transfer_to`` option (offered to the model as
an enum): a model talked into dialling an arbitrary number would be toll fraud. Likewise a
result may only have a name the plan lists in ``results`` (``outcome, new_date,
do_not_call``...), so the call record and a campaign's export get the columns the business
asked for, and ``do_not_call: yes`` puts the number called on the campaigns' do-not-call list.

Settings (dial plan ``options``): ``tools`` (comma list; default ``end_call, send_dtmf``, plus
``transfer_call`` when ``transfer_to`` is set and ``record_result`` when ``results`` is),
``transfer_to`` (comma list of E.164 numbers or SIP URIs), ``results`` (comma list of names).

Schemas follow each vendor's published function shape: OpenAI Realtime ``session.tools`` items
``{"type": "function", "name", "description", "parameters"}`` (openai-python
``types/realtime/realtime_function_tool.py``); Gemini Live ``setup.tools[].functionDeclarations``
with OpenAPI-subset schemas whose types are upper-case enum names (python-genai ``types.Schema``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.base import EngineEvent, Hangup, Result, SendDtmf, Transfer
from engine.remote.settings import CallSettings

__all__ = ["DTMF_CHARS", "CallTools", "ToolOutcome"]

TOOL_NAMES = ("end_call", "transfer_call", "send_dtmf", "record_result")
MAX_RESULT = 200
DTMF_CHARS = frozenset("0123456789*#w")
MAX_DTMF = 32


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What one function call did: the engine event (if any) and the output for the model."""

    event: EngineEvent | None
    output: dict[str, str]
    #: Whether the model should speak again after the output (not after a hang-up/transfer).
    respond: bool


@dataclass(frozen=True, slots=True)
class CallTools:
    """One call's tools; it also keeps the results the model recorded on this call."""

    enabled: tuple[str, ...]
    transfer_targets: tuple[str, ...]
    result_names: tuple[str, ...] = ()
    settled: dict[str, str] = field(default_factory=dict, compare=False)

    @classmethod
    def from_settings(cls, settings: CallSettings) -> CallTools:
        targets = tuple(settings.items("transfer_to"))
        results = tuple(settings.items("results"))
        names = settings.items("tools")
        if not names:
            names = ["end_call", "send_dtmf"] + (["transfer_call"] if targets else [])
            names += ["record_result"] if results else []
        unknown = [n for n in names if n not in TOOL_NAMES]
        if unknown:
            raise ValueError(
                f"option tools: unknown {', '.join(unknown)}; known: {', '.join(TOOL_NAMES)}"
            )
        if "transfer_call" in names and not targets:
            raise ValueError("option tools: transfer_call needs transfer_to (allowed targets)")
        if "record_result" in names and not results:
            raise ValueError("option tools: record_result needs results (allowed names)")
        return cls(tuple(names), targets, results)

    def _specs(self, string: str, obj: str) -> list[tuple[str, str, dict[str, Any]]]:
        specs: list[tuple[str, str, dict[str, Any]]] = []
        if "end_call" in self.enabled:
            specs.append(
                (
                    "end_call",
                    "Hang up the phone call. Say goodbye before calling this.",
                    {
                        "type": obj,
                        "properties": {
                            "reason": {"type": string, "description": "Why the call ends."}
                        },
                    },
                )
            )
        if "transfer_call" in self.enabled:
            specs.append(
                (
                    "transfer_call",
                    "Transfer the caller to a person. Tell the caller before calling this.",
                    {
                        "type": obj,
                        "properties": {
                            "target": {"type": string, "enum": list(self.transfer_targets)}
                        },
                        "required": ["target"],
                    },
                )
            )
        if "send_dtmf" in self.enabled:
            specs.append(
                (
                    "send_dtmf",
                    "Press phone keys (digits 0-9, * and #; w waits half a second), for "
                    "example to navigate a phone menu.",
                    {
                        "type": obj,
                        "properties": {"digits": {"type": string}},
                        "required": ["digits"],
                    },
                )
            )
        if "record_result" in self.enabled:
            specs.append(
                (
                    "record_result",
                    "Record something the call has settled, for the business's records, as "
                    "soon as it is settled (for example outcome: confirmed). Calling it again "
                    "with the same name replaces the value.",
                    {
                        "type": obj,
                        "properties": {
                            "name": {"type": string, "enum": list(self.result_names)},
                            "value": {"type": string},
                        },
                        "required": ["name", "value"],
                    },
                )
            )
        return specs

    def openai(self) -> list[dict[str, Any]]:
        """``session.tools`` for OpenAI Realtime (GA and beta share the shape)."""
        return [
            {"type": "function", "name": n, "description": d, "parameters": p}
            for n, d, p in self._specs("string", "object")
        ]

    def gemini(self) -> list[dict[str, Any]]:
        """``setup.tools`` for Gemini Live."""
        specs = self._specs("STRING", "OBJECT")
        if not specs:
            return []
        declarations = [{"name": n, "description": d, "parameters": p} for n, d, p in specs]
        return [{"functionDeclarations": declarations}]

    def call(self, name: str, args: Any) -> ToolOutcome:
        """Map one function call to an action; bad calls get an error the model can read."""
        if name not in self.enabled:
            return ToolOutcome(None, {"error": f"no such tool: {name}"}, True)
        if not isinstance(args, dict):
            return ToolOutcome(None, {"error": "arguments must be a JSON object"}, True)
        if name == "end_call":
            return ToolOutcome(Hangup(str(args.get("reason", ""))[:200]), {"result": "ok"}, False)
        if name == "transfer_call":
            target = args.get("target")
            if target not in self.transfer_targets:
                allowed = ", ".join(self.transfer_targets)
                return ToolOutcome(None, {"error": f"target must be one of: {allowed}"}, True)
            return ToolOutcome(Transfer(str(target)), {"result": "transferring"}, False)
        if name == "record_result":
            return self._record(args)
        digits = args.get("digits")
        if (
            not isinstance(digits, str)
            or not digits
            or len(digits) > MAX_DTMF
            or not set(digits) <= DTMF_CHARS
        ):
            return ToolOutcome(None, {"error": "digits: 1-32 of 0-9 * # w"}, True)
        return ToolOutcome(SendDtmf(digits), {"result": "sent"}, True)

    def _record(self, args: dict[str, Any]) -> ToolOutcome:
        key, value = args.get("name"), args.get("value")
        if key not in self.result_names:
            allowed = ", ".join(self.result_names)
            return ToolOutcome(None, {"error": f"name must be one of: {allowed}"}, True)
        if not isinstance(value, str) or not value.strip() or len(value) > MAX_RESULT:
            return ToolOutcome(None, {"error": f"value: 1-{MAX_RESULT} characters of text"}, True)
        self.settled[str(key)] = value.strip()
        return ToolOutcome(Result(dict(self.settled)), {"result": "recorded"}, True)
