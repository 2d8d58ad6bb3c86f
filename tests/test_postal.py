import pytest
from fastapi.testclient import TestClient

from kakehashi.kit.errors import NotFound, ValidationFailed
from kakehashi.postal.service import lookup


@pytest.mark.parametrize("code", ["1000001", "100-0001", "〒100-0001", "１００－０００１", "１０００００１"])
def test_any_written_form(code: str) -> None:
    (cand,) = lookup(code).candidates
    assert (cand.prefecture, cand.city, cand.town) == ("東京都", "千代田区", "千代田")
    assert cand.city_kana == "チヨダク"


def test_several_towns_for_one_code_come_back_as_a_list() -> None:
    result = lookup("452-0961")
    assert len(result.candidates) > 10
    assert {c.city for c in result.candidates} == {"清須市"}


def test_catch_all_row_has_no_town() -> None:
    (cand,) = lookup("0600000").candidates
    assert cand.town == "" and cand.city == "札幌市中央区"


def test_errors() -> None:
    with pytest.raises(ValidationFailed):
        lookup("123")
    with pytest.raises(NotFound):
        lookup("9999999")


def test_api(client: TestClient) -> None:
    assert client.get("/api/v1/postal/100-0001").json()["candidates"][0]["prefecture"] == "東京都"
    r = client.get("/api/v1/postal/12")
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "code"
    assert client.get("/api/v1/postal/9999999").status_code == 404


def test_first_town_is_kept_when_the_code_has_alternates() -> None:
    towns = {c.town for c in lookup("723-0032").candidates}
    assert {"須波西", "須波西町"} <= towns
