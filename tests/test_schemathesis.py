"""Schema-driven fuzzing of every operation in /openapi.json: no input makes the node answer 5xx."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from bices.api import create_app
from bices.node import Node
from tests.conftest import Coalition, auth, report_json

MAX_EXAMPLES = 25
# Responses that never end (the live stream): fuzzed over a real server in test_stream.py.
ENDLESS = {"GET /api/v1/stream"}


@pytest.fixture
def seeded(node: Node, coalition: Coalition) -> Iterator[tuple[Node, str, dict[str, str]]]:
    """A node with a few reports (one with an attachment) and an operator's token."""
    token = coalition.user(
        "USA",
        clearance="COSMIC TOP SECRET",
        caveats=("ATOMAL",),
        roles=("operator", "member-admin", "analyst"),
        name="usa.operator",
    )
    coalition.user("KOR", roles=("member-admin", "analyst"), name="kor.admin")
    known: dict[str, str] = {}
    with TestClient(create_app(node)) as client:
        attachment = {"name": "a.bin", "content_base64": base64.b64encode(b"payload").decode()}
        for body in (
            report_json(attachments=[attachment]),
            report_json(type="OSINT", language="id", title="Korea Utara meluncurkan rudal"),
            report_json(label={"classification": "PUBLIC", "releasable_to": ["NATO", "IP4"]}),
        ):
            response = client.post("/api/v1/reports", json=body, headers=auth(token))
            assert response.status_code == 201, response.text
            known.setdefault("report_id", response.json()["id"])
    yield node, token, known


def operations(schema: schemathesis.BaseSchema) -> list[schemathesis.APIOperation]:
    found = []
    for result in schema.get_all_operations():
        found.append(result.ok())
    return found


def fuzz(
    label: str,
    strategy: st.SearchStrategy[schemathesis.Case],
    headers: dict[str, str],
    failures: list[str],
    unsatisfiable: list[str],
) -> None:
    """Run one operation's cases; record the first (shrunk) server error, if any."""

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case: schemathesis.Case) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error], headers=headers)

    try:
        run()
    except Unsatisfiable:
        # Negative generation has nothing to break in an operation without inputs.
        unsatisfiable.append(label)
    except Exception as error:
        # A failure hypothesis could not replay (a flaky one) carries the first failure
        # inside it: show that too, so that a failure seen once says what it was.
        inner = getattr(error, "exceptions", ())
        detail = "".join(f"\n  first failure: {e!r}"[:2000] for e in inner)
        failures.append(f"{label}: {error}{detail}")


def test_no_operation_answers_5xx(seeded: tuple[Node, str, dict[str, str]]) -> None:
    node, token, known = seeded
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(node))
    ops = operations(schema)
    labels = {op.label for op in ops}
    assert "POST /api/v1/reports" in labels
    assert "GET /api/v1/search" in labels
    failures: list[str] = []
    unsatisfiable: list[str] = []
    for op in ops:
        if op.label in ENDLESS:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategies = [op.as_strategy(generation_mode=mode)]
            if "report_id" in {p.name for p in op.path_parameters}:
                # Also aim at a report that exists, so that deeper code runs.
                fixed = {"report_id": known["report_id"]}
                strategies.append(op.as_strategy(generation_mode=mode, path_parameters=fixed))
            label = f"{op.label} [{mode.value}]"
            fuzz(label, st.one_of(strategies), auth(token), failures, unsatisfiable)
    assert not failures, "\n\n".join(failures)
    # Only operations without any input may have nothing to fuzz.
    inputless = {"GET /healthz", "GET /taxii2/", "GET /federation/v1/node"}
    assert set(unsatisfiable) <= {f"{op} [negative]" for op in inputless}, unsatisfiable
