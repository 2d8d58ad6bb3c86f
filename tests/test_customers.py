"""Customer master: create/update with validation, numbers, custom fields, suggest, search."""

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from kakehashi.customers import service
from kakehashi.customers.schemas import CustomerCreate, CustomerUpdate, CustomFieldCreate, PhoneIn, age_on
from kakehashi.kit.context import Actor
from kakehashi.kit.errors import Conflict, NotFound, ValidationFailed


def make(session: Session, actor: Actor, name: str, kana: str | None, *phones: str, **extra: Any) -> int:
    data = CustomerCreate(name=name, name_kana=kana, phones=[PhoneIn(number=p) for p in phones], **extra)
    return service.create_customer(session, actor, data).id


def fields_of(exc: ValidationFailed | Conflict) -> set[str]:
    return {e["field"] for e in exc.errors}


class TestCreate:
    def test_given_japanese_input_then_normalized(self, session: Session, actor: Actor) -> None:
        c = service.create_customer(
            session,
            actor,
            CustomerCreate(
                name="　山田　　花子 ",
                name_kana="ﾔﾏﾀﾞ ﾊﾅｺ",
                postal_code="〒１００－０００１",
                email="Hanako@Example.JP",
                phones=[PhoneIn(number="０３（１２３４）５６７８"), PhoneIn(number="090-1111-2222", label="携帯")],
            ),
        )
        assert c.name == "山田 花子"
        assert c.name_kana == "ヤマダ ハナコ"
        assert c.postal_code == "1000001"
        assert c.email == "hanako@example.jp"
        assert [p.e164 for p in c.phones] == ["+81312345678", "+819011112222"]
        assert [p.is_primary for p in c.phones] == [True, False]
        assert c.phones[1].kind == "mobile"

    def test_given_hiragana_reading_then_stored_as_katakana(self, session: Session, actor: Actor) -> None:
        cid = make(session, actor, "佐藤 一郎", "さとう いちろう")
        assert service.get_customer(session, actor, cid).name_kana == "サトウ イチロウ"

    def test_given_bad_fields_then_every_problem_reported_and_nothing_stored(
        self, session: Session, actor: Actor
    ) -> None:
        with pytest.raises(ValidationFailed) as err:
            make(
                session,
                actor,
                "田中",
                "田中",
                "12345",
                "03-1234-5678",
                "0312345678",
                postal_code="123",
                email="nope",
                birthday=date(2999, 1, 1),
            )
        assert fields_of(err.value) == {
            "name_kana",
            "phones[0].number",
            "phones[2].number",
            "postal_code",
            "email",
            "birthday",
        }
        assert service.find_customer_id_by_phone(session, actor, "+81312345678") is None

    def test_given_number_of_another_customer_then_conflict_naming_the_owner(
        self, session: Session, actor: Actor
    ) -> None:
        owner = make(session, actor, "山田 太郎", None, "03-1234-5678")
        with pytest.raises(Conflict) as err:
            make(session, actor, "山田 次郎", None, "+81 3 1234 5678")
        assert err.value.errors[0]["customer_id"] == owner

    def test_same_number_may_exist_in_two_tenants(self, session: Session, actor: Actor, other_actor: Actor) -> None:
        a = make(session, actor, "A社の顧客", None, "03-1234-5678")
        b = make(session, other_actor, "B社の顧客", None, "03-1234-5678")
        assert service.find_customer_id_by_phone(session, actor, "+81312345678") == a
        assert service.find_customer_id_by_phone(session, other_actor, "+81312345678") == b

    def test_other_tenants_customer_is_not_found(self, session: Session, actor: Actor, other_actor: Actor) -> None:
        cid = make(session, other_actor, "B社の顧客", None)
        with pytest.raises(NotFound):
            service.get_customer(session, actor, cid)


class TestUpdate:
    def test_partial_update_keeps_other_fields(self, session: Session, actor: Actor) -> None:
        cid = make(session, actor, "山田 花子", "ヤマダ ハナコ", "03-1234-5678", email="a@b.jp")
        c = service.update_customer(session, actor, cid, CustomerUpdate(notes="折り返し希望"))
        assert c.email == "a@b.jp" and c.notes == "折り返し希望" and len(c.phones) == 1

    def test_phones_given_replace_the_set(self, session: Session, actor: Actor) -> None:
        cid = make(session, actor, "山田 花子", None, "03-1234-5678", "090-1111-2222")
        c = service.update_customer(
            session,
            actor,
            cid,
            CustomerUpdate(phones=[PhoneIn(number="09011112222", is_primary=True), PhoneIn(number="050-1234-5678")]),
        )
        assert sorted(p.e164 for p in c.phones) == ["+815012345678", "+819011112222"]
        assert service.find_customer_id_by_phone(session, actor, "+81312345678") is None
        # The removed number is free for someone else now.
        assert make(session, actor, "別人", None, "03-1234-5678")


class TestCustomFields:
    @pytest.fixture
    def fields(self, session: Session, actor: Actor) -> None:
        for spec in [
            CustomFieldCreate(key="married", label="既婚", type="boolean"),
            CustomFieldCreate(key="children", label="子供の人数", type="number"),
            CustomFieldCreate(key="survey_on", label="アンケート回答日", type="date"),
            CustomFieldCreate(key="hobby", label="趣味", type="choice", choices=["ゴルフ", "釣り", "料理"]),
            CustomFieldCreate(key="memo2", label="補足", type="text"),
        ]:
            service.define_custom_field(session, actor, spec)

    def test_values_coerced_by_type(self, session: Session, actor: Actor, fields: None) -> None:
        cid = make(
            session,
            actor,
            "山田 花子",
            None,
            custom={"married": "はい", "children": "２", "survey_on": "2026/4/1", "hobby": "釣り", "memo2": " x "},
        )
        assert service.get_customer(session, actor, cid).custom == {
            "married": True,
            "children": 2,
            "survey_on": "2026-04-01",
            "hobby": "釣り",
            "memo2": "x",
        }

    def test_bad_values_rejected_per_field(self, session: Session, actor: Actor, fields: None) -> None:
        with pytest.raises(ValidationFailed) as err:
            make(
                session,
                actor,
                "山田 花子",
                None,
                custom={"married": "maybe", "children": "two", "survey_on": "2026-13-01", "hobby": "登山", "nope": 1},
            )
        assert fields_of(err.value) == {
            "custom.married",
            "custom.children",
            "custom.survey_on",
            "custom.hobby",
            "custom.nope",
        }

    def test_added_at_run_time_and_queryable_without_migration(
        self, session: Session, actor: Actor, fields: None
    ) -> None:
        with_kids = make(session, actor, "子持ち", None, custom={"children": 2, "married": True})
        make(session, actor, "子なし", None, custom={"children": 0, "married": True})
        make(session, actor, "未回答", None)
        found, total = service.search_customers(session, actor, custom_filters=["children:gte:1"])
        assert [c.id for c in found] == [with_kids] and total == 1
        found, _ = service.search_customers(session, actor, custom_filters=["married:eq:true", "children:lt:1"])
        assert [c.name for c in found] == ["子なし"]

    def test_filter_on_unknown_field_is_a_clear_error(self, session: Session, actor: Actor, fields: None) -> None:
        with pytest.raises(ValidationFailed, match="bad filter"):
            service.search_customers(session, actor, custom_filters=["shoe_size:eq:27"])

    def test_required_field_enforced_on_create_not_on_unrelated_update(self, session: Session, actor: Actor) -> None:
        cid = make(session, actor, "先に登録", None)
        service.define_custom_field(
            session, actor, CustomFieldCreate(key="area", label="担当地区", type="text", required=True)
        )
        with pytest.raises(ValidationFailed):
            make(session, actor, "後から登録", None)
        # Existing customers stay editable although they lack the new required field.
        service.update_customer(session, actor, cid, CustomerUpdate(notes="ok"))

    def test_choice_field_needs_choices(self, session: Session, actor: Actor) -> None:
        with pytest.raises(ValidationFailed):
            service.define_custom_field(session, actor, CustomFieldCreate(key="c", label="c", type="choice"))


class TestSuggest:
    @pytest.fixture
    def people(self, session: Session, actor: Actor) -> dict[str, int]:
        return {
            "山田 花子": make(session, actor, "山田 花子", "ヤマダ ハナコ", "03-1234-5678"),
            "やまだ商店": make(session, actor, "やまだ商店", None),
            "山本 太郎": make(session, actor, "山本 太郎", "ヤマモト タロウ"),
            "佐藤 一郎": make(session, actor, "佐藤 一郎", "サトウ イチロウ"),
        }

    @pytest.mark.parametrize("q", ["や", "ヤ", "ﾔ", "やまだ", "ヤマダ", "ﾔﾏﾀﾞ", "ヤマダ ハ"])
    def test_kana_prefix_in_any_script_finds_the_reading(
        self, session: Session, actor: Actor, people: dict[str, int], q: str
    ) -> None:
        names = [c.name for c, _ in service.suggest(session, actor, q)]
        assert "山田 花子" in names
        assert "佐藤 一郎" not in names

    def test_kanji_prefix_finds_the_name(self, session: Session, actor: Actor, people: dict[str, int]) -> None:
        assert [c.name for c, _ in service.suggest(session, actor, "山")] == ["山本 太郎", "山田 花子"]

    def test_suggestion_carries_the_primary_number(
        self, session: Session, actor: Actor, people: dict[str, int]
    ) -> None:
        hits = dict((c.name, phone) for c, phone in service.suggest(session, actor, "やまだ"))
        assert hits == {"山田 花子": "03-1234-5678", "やまだ商店": None}

    def test_at_most_ten(self, session: Session, actor: Actor) -> None:
        for i in range(15):
            make(session, actor, f"鈴木 {i}", "スズキ")
        assert len(service.suggest(session, actor, "す")) == 10

    def test_other_tenant_never_suggested(self, session: Session, actor: Actor, other_actor: Actor) -> None:
        make(session, other_actor, "山田 秘密", "ヤマダ ヒミツ")
        assert service.suggest(session, actor, "や") == []


class TestSearch:
    def test_age_derived_from_birthday(self, session: Session, actor: Actor) -> None:
        today = date(2026, 11, 23)
        make(session, actor, "三十歳", None, birthday=date(1996, 11, 23))
        make(session, actor, "二十九歳", None, birthday=date(1996, 11, 24))
        found, _ = service.search_customers(session, actor, age_min=30, age_max=30, today=today)
        assert [c.name for c in found] == ["三十歳"]

    def test_age_on_leap_day(self) -> None:
        assert age_on(date(2000, 2, 29), date(2026, 2, 28)) == 25
        assert age_on(date(2000, 2, 29), date(2026, 3, 1)) == 26


class TestApi:
    def test_validation_errors_are_problem_details_per_field(self, client: TestClient) -> None:
        r = client.post("/api/v1/customers", json={"name": "田中", "phones": [{"number": "12"}], "email": "x"})
        assert r.status_code == 422
        assert r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert body["status"] == 422 and body["type"] == "/problems/validation"
        assert {e["field"] for e in body["errors"]} == {"phones[0].number", "email"}

    def test_schema_errors_are_problem_details_too(self, client: TestClient) -> None:
        r = client.post("/api/v1/customers", json={"phones": "nope"})
        assert r.status_code == 422
        assert {e["field"] for e in r.json()["errors"]} == {"name", "phones"}

    def test_duplicate_number_is_409(self, client: TestClient) -> None:
        client.post("/api/v1/customers", json={"name": "A", "phones": [{"number": "090-1234-5678"}]})
        r = client.post("/api/v1/customers", json={"name": "B", "phones": [{"number": "09012345678"}]})
        assert r.status_code == 409 and r.json()["errors"][0]["field"] == "phones[0].number"

    def test_create_get_patch_list(self, client: TestClient) -> None:
        client.post("/api/v1/custom-fields", json={"key": "children", "label": "子供", "type": "number"})
        cid = client.post(
            "/api/v1/customers", json={"name": "山田 花子", "birthday": "1980-05-01", "custom": {"children": "3"}}
        ).json()["id"]
        got = client.get(f"/api/v1/customers/{cid}").json()
        assert got["custom"] == {"children": 3} and got["age"] >= 46
        patched = client.patch(f"/api/v1/customers/{cid}", json={"rank": "VIP"}).json()
        assert patched["rank"] == "vip"
        page = client.get("/api/v1/customers", params={"cf": "children:gte:2"}).json()
        assert page["total"] == 1 and page["items"][0]["id"] == cid
        assert client.get("/api/v1/customers/999999").status_code == 404

    def test_suggest_endpoint(self, client: TestClient) -> None:
        client.post(
            "/api/v1/customers",
            json={"name": "山田 花子", "name_kana": "ヤマダ ハナコ", "phones": [{"number": "0312345678"}]},
        )
        hits = client.get("/api/v1/customers/suggest", params={"q": "ｙａ"}).json()
        assert hits == []
        hits = client.get("/api/v1/customers/suggest", params={"q": "や"}).json()
        assert hits[0]["name"] == "山田 花子" and hits[0]["phone"] == "03-1234-5678"
