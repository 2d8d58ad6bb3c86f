"""Masked means masked: a role that sees a field masked cannot search or filter on it (issue 15, item 4).

A client viewer (委託元) sees ``山田 ＊＊``, custom text/dates/choices as ``***``. Before, ``q=山田花`` found the
customer and ``q=山田太`` did not (the given name leaked a character at a time), ``cf=hobby:eq:園芸`` confirmed a
hidden value and ``cf=questionnaire_date:gt:…`` binary-searched a hidden date. Now the name search of a masked
viewer stays inside the family name, and filters on masked custom fields are refused (403, the field named).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import BaseModel
from sqlalchemy.orm import Session

from conftest import ClientAs
from kakehashi.audit.models import AuditEvent
from kakehashi.customers import custom_fields
from kakehashi.customers.models import CustomFieldDef
from kakehashi.kit.context import Role
from kakehashi.kit.masking import HIDDEN, CustomValues

FIELDS = [
    {"key": "memo", "label": "メモ", "type": "text"},
    {"key": "hobby", "label": "趣味", "type": "choice", "choices": ["園芸", "釣り"]},
    {"key": "questionnaire_date", "label": "アンケート回答日", "type": "date"},
    {"key": "children", "label": "子供の人数", "type": "number"},
    {"key": "married", "label": "既婚", "type": "boolean"},
]
HANAKO = {
    "name": "山田 花子",
    "name_kana": "ヤマダ ハナコ",
    "gender": "female",
    "birthday": "1980-05-01",
    "prefecture": "東京都",
    "rank": "vip",
    "phones": [{"number": "090-1234-5678"}],
    "custom": {"memo": "鍵は植木鉢の下", "hobby": "園芸", "questionnaire_date": "2026-02-10", "children": 2,
               "married": True},
}  # fmt: skip
OTHERS = [
    {"name": "山本 一郎", "name_kana": "ヤマモト イチロウ"},
    {"name": "田中一郎"},  # no space between family and given name: shown as 田＊＊
]


@pytest.fixture
def world(client: TestClient) -> dict[str, Any]:
    for field in FIELDS:
        assert client.post("/api/v1/custom-fields", json=field).status_code == 201
    ids = {c["name"]: client.post("/api/v1/customers", json=c).json()["id"] for c in [HANAKO, *OTHERS]}
    return ids


@pytest.fixture
def viewer(client_as: ClientAs) -> TestClient:
    return client_as(Role.CLIENT_VIEWER)


@pytest.fixture
def operator(client_as: ClientAs) -> TestClient:
    return client_as(Role.OPERATOR)


def names(r: Any) -> set[str]:
    assert r.status_code == 200, r.text
    body = r.json()
    return {c["name"] for c in (body["items"] if isinstance(body, dict) else body)}


# -- the name search (q, and the suggestions) stays inside the family name ------------------------------------

# What the operator finds by the given name (so the masked answer below is not empty by accident).
REACHING_INTO_THE_GIVEN_NAME = ["山田花", "山田花子", "やまだは", "ヤマダハナコ", "ﾔﾏﾀﾞﾊ", "田中一"]


@pytest.mark.parametrize("path", ["/api/v1/customers", "/api/v1/customers/suggest"])
@pytest.mark.parametrize("q", REACHING_INTO_THE_GIVEN_NAME)
def test_a_query_reaching_into_the_masked_given_name_finds_nothing(
    world: dict[str, int], viewer: TestClient, operator: TestClient, path: str, q: str
) -> None:
    assert names(operator.get(path, params={"q": q}))  # the operator finds the customer by the given name
    assert names(viewer.get(path, params={"q": q})) == set()  # the same answer as a wrong given name: no oracle
    assert names(viewer.get(path, params={"q": q[:-1] + "太"})) == set()


@pytest.mark.parametrize("path", ["/api/v1/customers", "/api/v1/customers/suggest"])
@pytest.mark.parametrize("q", ["山田 花", "やまだ　は", "ヤマダ ハナコ"])
def test_a_query_with_the_given_name_after_a_space_is_refused(
    world: dict[str, int], viewer: TestClient, session: Session, path: str, q: str
) -> None:
    r = viewer.get(path, params={"q": q})
    assert r.status_code == 403 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == "masked_field"
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [("q", "masked")]
    assert "山田 ＊＊" in problem["errors"][0]["message"]
    assert "花子" not in r.text
    denied = session.query(AuditEvent).filter_by(username=viewer.user.username, outcome="denied").one()  # type: ignore[attr-defined]
    assert denied.detail and denied.detail["status"] == 403


@pytest.mark.parametrize("path", ["/api/v1/customers", "/api/v1/customers/suggest"])
@pytest.mark.parametrize(
    ("q", "found"),
    [
        ("山田", {"山田 ＊＊"}),
        ("山", {"山田 ＊＊", "山本 ＊＊"}),
        ("やまだ", {"山田 ＊＊"}),
        ("ﾔﾏﾓﾄ", {"山本 ＊＊"}),
        ("田", {"田＊＊"}),  # a name without a space shows its first character only
        ("田中", set()),
    ],
)
def test_the_visible_family_name_is_searchable(
    world: dict[str, int], viewer: TestClient, path: str, q: str, found: set[str]
) -> None:
    assert names(viewer.get(path, params={"q": q})) == found


# -- filters on masked custom fields are refused; visible ones work -------------------------------------------

MASKED_FILTERS = [
    "memo:eq:鍵は植木鉢の下",
    "memo:contains:鍵",
    "hobby:eq:園芸",
    "hobby:ne:釣り",
    "questionnaire_date:gt:2026-01-01",
    "questionnaire_date:eq:2026-02-10",
    "questionnaire_date:lte:2026-12-31",
]


@pytest.mark.parametrize("cf", MASKED_FILTERS)
def test_a_filter_on_a_masked_custom_field_is_refused(
    world: dict[str, int], viewer: TestClient, operator: TestClient, cf: str
) -> None:
    assert names(operator.get("/api/v1/customers", params={"cf": cf})) == {"山田 花子"}
    r = viewer.get("/api/v1/customers", params={"cf": cf})
    assert r.status_code == 403, r.text
    error = r.json()["errors"][0]
    assert (error["field"], error["code"]) == ("cf", "masked") and cf.split(":")[0] in error["message"]


@pytest.mark.parametrize(
    "params",
    [
        {"cf": "children:gte:1"},
        {"cf": "married:eq:true"},
        {"rank": "vip"},
        {"prefecture": "東京都"},
        {"gender": "female"},
        {"age_min": 40, "age_max": 60},  # the age is shown (only the birthday is hidden)
    ],
)
def test_filters_on_values_the_viewer_sees_still_work(
    world: dict[str, int], viewer: TestClient, params: dict[str, Any]
) -> None:
    assert names(viewer.get("/api/v1/customers", params=params)) == {"山田 ＊＊"}


def test_a_tenant_that_lets_its_viewers_see_full_values_lets_them_filter(client_as: ClientAs) -> None:
    admin = client_as(Role.ADMIN, center_wide=True)
    tenant = admin.post("/api/v1/tenants", json={"code": "open-client", "name": "開示OK社"}).json()
    headers = {"X-Kakehashi-Tenant": "open-client"}
    for field in FIELDS:
        admin.post("/api/v1/custom-fields", json=field, headers=headers)
    admin.post("/api/v1/customers", json=HANAKO, headers=headers)
    viewer = client_as(Role.CLIENT_VIEWER, "open-client")
    assert viewer.get("/api/v1/customers", params={"cf": "hobby:eq:園芸"}).status_code == 403
    admin.patch(f"/api/v1/tenants/{tenant['id']}", json={"client_sees_personal_data": True})
    assert names(viewer.get("/api/v1/customers", params={"cf": "hobby:eq:園芸", "q": "山田花"})) == {"山田 花子"}


# -- the rules follow the masking, and every parameter is classified -------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value"),
    [("text", "メモ"), ("date", "2026-02-10"), ("choice", "園芸"), ("number", 2), ("boolean", True)],
)
def test_the_refused_custom_field_types_are_exactly_those_masked(kind: str, value: Any) -> None:
    class Values(BaseModel):
        custom: CustomValues

    defn = CustomFieldDef(key="k", label="k", type=kind, choices=["園芸"])
    stored = custom_fields.coerce(defn, value)
    masked = Values(custom={"k": stored}).model_dump()["custom"]["k"] == HIDDEN
    assert masked is (kind in custom_fields.MASKED_TYPES)


#: Each search parameter a client viewer can send, and what it touches. A new parameter fails
#: ``test_every_search_parameter_is_classified`` until it is classified here (and refused if it is masked).
SEARCH_PARAMETERS = {
    "/api/v1/customers": {
        "q": "name and reading: inside the visible family name only",
        "cf": "custom fields: masked types refused",
        "rank": "visible",
        "prefecture": "visible",
        "gender": "visible",
        "age_min": "visible (the age is shown)",
        "age_max": "visible (the age is shown)",
        "limit": "paging",
        "offset": "paging",
    },
    "/api/v1/customers/suggest": {"q": "name and reading: inside the visible family name only", "limit": "paging"},
    "/api/v1/customers/{customer_id}/orders": {"customer_id": "the id", "limit": "paging"},
}


def test_every_search_parameter_is_classified(app_client: TestClient) -> None:
    from kakehashi.auth.guard import api_routes

    viewer_routes = {
        path: {p.name for p in route.dependant.query_params + route.dependant.path_params}
        for method, path, route in api_routes(app_client.app)  # type: ignore[arg-type]
        if method == "GET" and "client_viewer" in _roles(route) and path.startswith("/api/v1/customers")
    }
    assert {path: set(params) for path, params in SEARCH_PARAMETERS.items()} == {
        path: params for path, params in viewer_routes.items() if path != "/api/v1/customers/{customer_id}"
    }
    assert viewer_routes["/api/v1/customers/{customer_id}"] == {"customer_id"}


def _roles(route: Any) -> set[str]:
    from kakehashi.auth.guard import Access

    for dep in route.dependant.dependencies:
        if isinstance(dep.call, Access):
            return {r.value for r in dep.call.roles}
    return set()


def test_the_screen_pop_by_phone_is_closed_to_client_viewers(world: dict[str, int], viewer: TestClient) -> None:
    """No lookup by a full number (which would confirm a masked one): the screen pop is for the floor only."""
    assert viewer.get("/api/v1/screenpop", params={"phone": "090-1234-5678"}).status_code == 403
