"""Bad input, generated: every body the contract accepts is accepted, everything else gets a 400 or a 422
whose ``details`` name the field, through the real handler with API Gateway events.

The oracles are independent of the implementation: a guestId is valid when ``uuid.UUID`` reads it and its
canonical form is the input in lower case (and it is not the nil UUID).
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.genesys_emulator import GenesysEmulator
from devtools.local_api import build_event
from tests.conftest import ORIGIN

FIELDS = ("guestId", "duration", "scopes")
DURATIONS = {"short": 3600, "standard": 7200, "extended": 14400, "max": 86400}
ALLOWED_SCOPES = [f"webmessaging:guest:{name}" for name in ("send", "receive", "read", "update")]
DEFAULT_SCOPES = ALLOWED_SCOPES[:2]
# API Gateway passes bodies up to 10 MB to the function (the template's model caps them far lower in AWS;
# the function must hold up without it, as behind the local endpoint or a misconfigured stage).
API_GATEWAY_PAYLOAD_LIMIT = 10 * 1024 * 1024

# The invoke fixture is shared by the examples on purpose: one warm container; derandomized so CI is
# reproducible, and no example database is written into the work tree.
PROPERTY = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def canonical_guest_id(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parsed = uuid.UUID(value)
    except ValueError:
        return False
    return str(parsed) == value.lower() and parsed.int != 0


@st.composite
def guest_ids(draw: st.DrawFn) -> str:
    """A canonical UUID (any version) in any mix of upper and lower case."""
    text = str(draw(st.uuids().filter(lambda value: value.int != 0)))
    flips = draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(char.upper() if flip else char for char, flip in zip(text, flips, strict=True))


scope_values = st.sampled_from(ALLOWED_SCOPES) | st.lists(st.sampled_from(ALLOWED_SCOPES), min_size=1, max_size=6)
valid_bodies = st.fixed_dictionaries(
    {},
    optional={
        "guestId": st.none() | guest_ids(),
        "duration": st.none() | st.sampled_from(sorted(DURATIONS)),
        "scopes": st.none() | scope_values,
    },
)

near_uuids = st.one_of(
    st.text(alphabet="0123456789abcdefABCDEF-{} \n\t", min_size=30, max_size=40),
    guest_ids().map(lambda value: value + "\n"),
    guest_ids().map(lambda value: " " + value),
    guest_ids().map(lambda value: value.replace("-", "")),
    guest_ids().map(lambda value: "urn:uuid:" + value),
    guest_ids().map(lambda value: value[:-1] + "g"),
    st.just("-" * 36),
    st.just("00000000-0000-0000-0000-000000000000"),
)
bad_guest_ids = st.one_of(near_uuids, st.text(max_size=64), json_values).filter(
    lambda value: value is not None and not canonical_guest_id(value)
)
bad_durations = json_values.filter(
    lambda value: value is not None and not (isinstance(value, str) and value in DURATIONS)
)
bad_scopes = st.one_of(
    st.just([]),
    st.lists(st.sampled_from(ALLOWED_SCOPES) | json_values, min_size=1, max_size=4).filter(
        lambda items: not all(item in ALLOWED_SCOPES for item in items)
    ),
    json_values.filter(lambda value: value is not None and not isinstance(value, list | str)),
    st.text(max_size=40).filter(lambda value: value not in ALLOWED_SCOPES),
)


def refused_fields(answer: Any) -> list[str]:
    assert (answer.status, answer.error_code) == (422, "invalid_request"), answer.body
    details = answer.json["error"]["details"]
    assert details and all(detail["issue"] for detail in details)
    return [detail["field"] for detail in details]


# ---- accepted --------------------------------------------------------------------------------------------


@PROPERTY
@given(body=valid_bodies)
def test_every_body_the_contract_accepts_is_accepted(invoke: Any, body: dict[str, Any]) -> None:
    answer = invoke(body)
    assert answer.status == 200, answer.body
    issued = answer.json
    if body.get("guestId") is not None:
        assert issued["guestId"] == body["guestId"].lower()
    else:
        assert uuid.UUID(issued["guestId"]).version == 4
    scopes = body.get("scopes")
    expected = (
        DEFAULT_SCOPES if scopes is None else list(dict.fromkeys([scopes] if isinstance(scopes, str) else scopes))
    )
    assert issued["scopes"] == expected
    lifetime = DURATIONS[body.get("duration") or "standard"]
    assert lifetime - 5 <= issued["expiresIn"] <= lifetime


# ---- refused, naming the field ---------------------------------------------------------------------------


@PROPERTY
@given(value=bad_guest_ids, rest=valid_bodies)
def test_a_guest_id_that_is_not_a_canonical_uuid_is_refused(invoke: Any, value: Any, rest: dict[str, Any]) -> None:
    assert refused_fields(invoke({**rest, "guestId": value})) == ["guestId"]


@PROPERTY
@given(value=bad_durations)
def test_a_duration_outside_the_four_names_is_refused(invoke: Any, value: Any) -> None:
    assert refused_fields(invoke({"duration": value})) == ["duration"]


@PROPERTY
@given(value=bad_scopes)
def test_scopes_that_are_empty_unknown_or_not_strings_are_refused(invoke: Any, value: Any) -> None:
    fields = refused_fields(invoke({"scopes": value}))
    assert all(field == "scopes" or field.startswith("scopes.") for field in fields), fields


@PROPERTY
@given(
    extra=st.dictionaries(
        st.text(min_size=1, max_size=30).filter(lambda key: key not in FIELDS), json_values, min_size=1, max_size=3
    )
)
def test_unknown_fields_are_refused_by_name(invoke: Any, extra: dict[str, Any]) -> None:
    assert sorted(refused_fields(invoke(extra))) == sorted(extra)


@pytest.mark.parametrize(
    "guest_id",
    ["-" * 36, "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b\n", "3f2b8c1e-9a4d-4e6f-8b7a-1c2d3e4f5a6b\r\n"],
    ids=["36-dashes", "trailing-newline", "trailing-crlf"],
)
def test_the_classic_near_misses_are_refused(invoke: Any, emulator: GenesysEmulator, guest_id: str) -> None:
    assert refused_fields(invoke({"guestId": guest_id})) == ["guestId"]
    assert emulator.count("guest-token") == 0


# ---- not a JSON object at all: 400 ------------------------------------------------------------------------


@PROPERTY
@given(document=json_values.filter(lambda value: not isinstance(value, dict)))
def test_json_that_is_not_an_object_is_invalid_json(invoke: Any, document: Any) -> None:
    answer = invoke(raw=json.dumps(document))
    assert (answer.status, answer.error_code) == (400, "invalid_json")


@PROPERTY
@given(data=st.binary(min_size=1, max_size=64))
def test_bytes_that_are_not_utf8_are_invalid_json(invoke: Any, data: bytes) -> None:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        data = b"{" + data + b"\xff"
    answer = invoke(raw=data)
    assert (answer.status, answer.error_code) == (400, "invalid_json")


@pytest.mark.parametrize("depth", [100, 10_000, 200_000])
@pytest.mark.parametrize("where", ["top", "field"])
def test_deeply_nested_json_is_a_caller_mistake_not_a_crash(invoke: Any, depth: int, where: str) -> None:
    nested = "[" * depth + "]" * depth
    answer = invoke(raw=nested if where == "top" else '{"scopes": ' + nested + "}")
    # Deep bodies past the 16 KiB cap are refused for their size before they are parsed.
    assert answer.status in ((400, 422) if 2 * depth + 12 <= 16 * 1024 else (413,)), answer.body
    if answer.status == 422:
        assert [detail["field"].split(".")[0] for detail in answer.json["error"]["details"]] == ["scopes"]


# ---- size ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "field"), [(API_GATEWAY_PAYLOAD_LIMIT - 100, "guestId"), (API_GATEWAY_PAYLOAD_LIMIT + 100, "duration")]
)
def test_bodies_near_and_above_api_gateways_payload_limit_are_refused_without_echo(
    invoke: Any, emulator: GenesysEmulator, size: int, field: str
) -> None:
    filler = "a" * (size - len(json.dumps({field: ""})))
    body = json.dumps({field: filler})
    assert abs(len(body) - size) <= 1
    answer = invoke(raw=body)
    assert (answer.status, answer.error_code) == (413, "payload_too_large")
    # Neither the answer nor the logs carry the input back.
    assert len(answer.body) < 1000
    assert len(json.dumps(answer.logs)) < 10_000
    assert emulator.count("oauth") == 0


@pytest.mark.parametrize("encoded", [False, True], ids=["plain", "base64"])
def test_whitespace_padding_is_no_way_past_the_body_cap(invoke: Any, emulator: GenesysEmulator, encoded: bool) -> None:
    # JSON Schema (API Gateway's model) never sees whitespace: the function caps the body itself.
    padded = "{" + " " * (5 * 1024 * 1024) + "}"
    event = build_event(
        "POST",
        "/guest-tokens",
        headers={"Origin": ORIGIN, "Content-Type": "application/json"},
        body=base64.b64encode(padded.encode()).decode() if encoded else padded,
    )
    event["isBase64Encoded"] = encoded
    answer = invoke(event=event)
    assert (answer.status, answer.error_code) == (413, "payload_too_large")
    assert emulator.count("oauth") == 0
    # Just under the cap, the same padding is a valid (empty) request.
    assert invoke(raw="{" + " " * (16 * 1024 - 2) + "}").status == 200


def test_a_huge_origin_does_not_choose_how_much_is_logged(invoke: Any) -> None:
    answer = invoke({}, origin="https://" + "a" * 10_000 + ".example")
    assert (answer.status, answer.error_code) == (403, "origin_not_allowed")
    assert len(json.dumps(answer.logs)) < 4_000


def test_hundreds_of_unknown_fields_are_each_named(invoke: Any) -> None:
    body = {f"field{index}": index for index in range(800)}  # as many as fit in the 16 KiB cap
    fields = refused_fields(invoke(body))
    assert len(fields) == 800
    assert all(field.startswith("field") for field in fields)


def test_a_refused_body_still_carries_cors_headers_for_the_allowed_origin(invoke: Any) -> None:
    answer = invoke(raw="[" * 10_000)
    assert answer.status == 400
    assert answer.headers["Access-Control-Allow-Origin"] == ORIGIN
