"""The flow loader's bounds (issue 13, finding 6): the dial plan's file rule, depth, expansion."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.files import FileRefused, read_regular_file
from engine.local.flow import MAX_DEPTH, MAX_FLOW_BYTES, MAX_NODES, FlowInvalid, load_flow
from engine.registry import check_settings

SMALL = "name: t\nstart: a\nstates:\n  a: {say: 'Hello.', hangup: true}\n"


def test_a_flow_over_the_size_cap_is_refused_before_parsing(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(SMALL + "#" * MAX_FLOW_BYTES + "\n")  # valid YAML: all comment
    with pytest.raises(FileRefused, match=f"^larger than {MAX_FLOW_BYTES} bytes$"):
        load_flow(path)
    # The dial plan's check of a route's flow says so too (engine.registry.check_settings).
    (problem,) = check_settings("local", {"flow": str(path)})
    assert problem.message == f"cannot be read: larger than {MAX_FLOW_BYTES} bytes"


def test_a_flow_at_the_cap_loads(tmp_path: Path) -> None:
    path = tmp_path / "full.yaml"
    path.write_text(SMALL + "#" * (MAX_FLOW_BYTES - len(SMALL) - 1) + "\n")
    assert path.stat().st_size == MAX_FLOW_BYTES
    assert load_flow(path).start == "a"


@pytest.mark.parametrize("name", ["/dev/zero", "dir", "fifo", "missing.yaml"])
def test_a_flow_that_is_not_a_regular_file_is_refused_unread(tmp_path: Path, name: str) -> None:
    path = tmp_path / name if not name.startswith("/") else Path(name)
    if name == "dir":
        path.mkdir()
    elif name == "fifo":
        os.mkfifo(path)  # opening it to read would block until a writer came
    with pytest.raises(FileRefused) as caught:
        load_flow(path)
    assert str(caught.value) == ("not found" if name == "missing.yaml" else "not a regular file")


def test_deep_nesting_is_a_flow_error_not_a_recursion_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("name: " + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(FlowInvalid) as caught:
        load_flow(path)
    assert f"nested more than {MAX_DEPTH} levels deep" in caught.value.problems[0]


def test_an_alias_bomb_is_refused_by_its_expanded_size(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\nname: t\n")
    with pytest.raises(FlowInvalid) as caught:
        load_flow(path)
    assert f"expands to more than {MAX_NODES} values" in caught.value.problems[0]


def test_a_recursive_alias_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "loop.yaml"
    path.write_text("name: &x [a, *x]\n")
    with pytest.raises(FlowInvalid) as caught:
        load_flow(path)
    assert "refers to a value that contains it" in caught.value.problems[0]


def test_the_dial_plan_and_the_flow_loader_share_one_reader(tmp_path: Path) -> None:
    from gateway.dialplan import loader

    assert loader.PlanFileUnreadable is FileRefused
    path = tmp_path / "x"
    path.write_bytes(b"12345")
    assert read_regular_file(path, 5) == b"12345"
    with pytest.raises(FileRefused, match="larger than 4 bytes"):
        loader.read_plan_file(path, 4)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=400) | st.text(max_size=400).map(str.encode))
def test_any_bytes_load_as_a_flow_or_give_flow_invalid(tmp_path: Path, content: bytes) -> None:
    """Whatever a regular file holds, the loader returns a flow or lists problems: no other
    error."""
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(content)
    try:
        load_flow(path)
    except FlowInvalid as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)


_scalar = st.one_of(st.text(max_size=12), st.integers(), st.booleans(), st.none())
_value = st.recursive(
    _scalar,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.dictionaries(
        st.sampled_from(
            [
                "name",
                "start",
                "states",
                "variables",
                "version",
                "no_input",
                "anywhere",
                "acknowledgements",
            ]
        ),
        _value,
        max_size=6,
    )
)
def test_flow_shaped_yaml_loads_or_gives_flow_invalid(tmp_path: Path, data: dict) -> None:
    """Structured YAML near the flow format reaches validation and ends in a flow or problems."""
    import yaml

    path = tmp_path / "shaped.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        load_flow(path)
    except FlowInvalid as exc:
        assert exc.problems
