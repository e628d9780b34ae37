from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from bices.domain.errors import InvalidInput
from bices.domain.label_xml import from_xml, to_xml
from bices.domain.labels import Classification, Label
from tests.conftest import Coalition, auth, report_json

codes = st.sampled_from(["NATO", "IP4", "USA", "KOR", "JPN", "GBR", "EST"])
caveats = st.sampled_from(["ATOMAL", "COMMERCIAL IMAGERY", "CRYPTO"])
labels = st.builds(
    Label,
    classification=st.sampled_from(list(Classification)),
    releasable_to=st.frozensets(codes, min_size=1),
    originator=st.sampled_from(["USA", "KOR", "JPN"]),
    caveats=st.frozensets(caveats),
)


@given(labels)
def test_a_label_survives_the_round_trip_through_4774_xml(label: Label) -> None:
    assert from_xml(to_xml(label)) == label


def test_the_xml_names_policy_classification_and_categories() -> None:
    label = Label.build("NATO SECRET", ["NATO", "KOR"], "KOR", ["ATOMAL"])
    xml = to_xml(label)
    assert "urn:nato:stanag:4774:confidentialitymetadatalabel:1:0" in xml
    assert "<slab:Classification>NATO SECRET</slab:Classification>" in xml
    assert 'Type="PERMISSIVE" TagName="Releasable To"' in xml
    assert 'Type="RESTRICTIVE" TagName="Additional Sensitivity"' in xml


@pytest.mark.parametrize(
    ("xml", "complaint"),
    [
        ("<not xml", "not well-formed"),
        ("<a/>", "not a 4774 confidentiality label"),
        (
            '<!DOCTYPE x [<!ENTITY e "boom">]><slab:originatorConfidentialityLabel '
            'xmlns:slab="urn:nato:stanag:4774:confidentialitymetadatalabel:1:0"/>',
            "not allowed",
        ),
        (
            '<slab:originatorConfidentialityLabel xmlns:slab="urn:nato:stanag:4774:'
            'confidentialitymetadatalabel:1:0"><slab:ConfidentialityInformation>'
            "<slab:PolicyIdentifier>UK</slab:PolicyIdentifier>"
            "</slab:ConfidentialityInformation></slab:originatorConfidentialityLabel>",
            "policy 'UK'",
        ),
    ],
)
def test_unusable_xml_is_refused_with_the_reason(xml: str, complaint: str) -> None:
    with pytest.raises(InvalidInput, match=complaint):
        from_xml(xml)


def test_the_api_serves_a_visible_reports_label_as_xml(
    client: TestClient, coalition: Coalition
) -> None:
    usa = coalition.user("USA")
    jpn = coalition.user("JPN")
    report_id = client.post("/api/v1/reports", json=report_json(), headers=auth(usa)).json()["id"]
    answer = client.get(f"/api/v1/reports/{report_id}/label.xml", headers=auth(usa))
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/xml")
    assert from_xml(answer.text) == Label.build("NATO SECRET", ["NATO", "KOR"], "USA")
    assert (
        client.get(f"/api/v1/reports/{report_id}/label.xml", headers=auth(jpn)).status_code == 404
    )
