"""Result codes (対応結果): the defaults, a center's own ordered list, retired codes, roles, tenants, and the
wrap-up that only takes a code of the center's list."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from conftest import ClientAs
from kakehashi.calls import service as calls
from kakehashi.calls.models import Call
from kakehashi.calls.sink import CallEventSink
from kakehashi.dispositions.service import AUTO_CLOSE, DEFAULTS, SYSTEM_CODES
from kakehashi.kit.context import Actor, Role
from kakehashi.kit.db import utcnow
from kakehashi.kit.errors import ValidationFailed
from kakehashi.kit.timers import VirtualClock
from kakehashi.telephony.drivers.sim.driver import SimDriver

OWN = [
    {"code": "成約", "label_en": "Closed", "kind": "sale"},
    {"code": "資料送付", "kind": "contact"},
    {"code": "再架電", "label_en": "Call again", "kind": "callback"},
]


def codes(listed: list[dict[str, Any]]) -> list[str]:
    return [d["code"] for d in listed]


def test_a_center_without_its_own_list_gets_the_defaults(client_as: ClientAs) -> None:
    listed = client_as(Role.OPERATOR).get("/api/v1/dispositions").json()
    assert codes(listed) == [d.code for d in DEFAULTS]
    assert all(d["builtin"] and d["active"] for d in listed)
    assert listed[0] == {"code": "受注", "label_en": "Order taken", "kind": "sale", "position": 0, "active": True,
                         "builtin": True}  # fmt: skip


def test_the_list_is_set_as_a_whole_in_order_and_left_out_codes_are_retired(client_as: ClientAs) -> None:
    supervisor = client_as(Role.SUPERVISOR)
    r = supervisor.put("/api/v1/dispositions", json={"dispositions": OWN})
    assert r.status_code == 200, r.text
    assert [(d["code"], d["kind"], d["position"], d["builtin"]) for d in r.json()] == [
        ("成約", "sale", 0, False), ("資料送付", "contact", 1, False), ("再架電", "callback", 2, False)
    ]  # fmt: skip
    reordered = [OWN[2], {**OWN[0], "label_en": "Won"}]  # 資料送付 left out
    assert codes(supervisor.put("/api/v1/dispositions", json={"dispositions": reordered}).json()) == ["再架電", "成約"]
    operator = client_as(Role.OPERATOR)
    assert codes(operator.get("/api/v1/dispositions").json()) == ["再架電", "成約"]
    assert codes(operator.get("/api/v1/dispositions?retired=true").json()) == ["再架電", "成約"]  # managers only
    everything = supervisor.get("/api/v1/dispositions?retired=true").json()
    assert [(d["code"], d["active"]) for d in everything] == [("再架電", True), ("成約", True), ("資料送付", False)]
    assert everything[1]["label_en"] == "Won"
    back = supervisor.put("/api/v1/dispositions", json={"dispositions": OWN}).json()  # a retired code comes back
    assert codes(back) == ["成約", "資料送付", "再架電"]


@pytest.mark.parametrize(
    ("items", "field"),
    [
        ([OWN[0], OWN[1], {"code": " 成約 "}], "dispositions.2.code"),  # the same code twice (spaces trimmed)
        ([{"code": ""}], "dispositions.0.code"),
        ([{"code": "改行\nあり"}], "dispositions.0.code"),
        ([{"code": "x" * 41}], "dispositions.0.code"),
        ([{"code": "成約", "kind": "won"}], "dispositions.0.kind"),
        ([], "dispositions"),
    ],
)
def test_a_bad_list_is_refused_with_the_field_and_changes_nothing(
    client_as: ClientAs, items: list[dict[str, Any]], field: str
) -> None:
    admin = client_as(Role.ADMIN)
    assert admin.put("/api/v1/dispositions", json={"dispositions": OWN[:1]}).status_code == 200
    r = admin.put("/api/v1/dispositions", json={"dispositions": items})
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in r.json()["errors"]}, r.json()
    assert codes(admin.get("/api/v1/dispositions").json()) == ["成約"]


def test_only_managers_set_the_list_and_each_tenant_has_its_own(client_as: ClientAs) -> None:
    assert client_as(Role.OPERATOR).put("/api/v1/dispositions", json={"dispositions": OWN}).status_code == 403
    assert client_as(Role.CLIENT_VIEWER).get("/api/v1/dispositions").status_code == 403
    assert client_as(Role.ADMIN).put("/api/v1/dispositions", json={"dispositions": OWN}).status_code == 200
    other = client_as(Role.SUPERVISOR, "tenant-b")
    assert all(d["builtin"] for d in other.get("/api/v1/dispositions").json())


@pytest.fixture
def in_wrap_up(client_as: ClientAs, session_factory: sessionmaker[Session]) -> tuple[Any, int]:
    """sato's call, answered and hung up: in wrap-up."""
    sato = client_as(Role.OPERATOR, username="sato")
    sim = SimDriver(VirtualClock(utcnow()))
    CallEventSink.attach(sim, session_factory)
    ref = sim.incoming(ani="03-1234-5678", dnis="0120-444-444", tenant_id=sato.user.tenant_id)
    sim.route_to_agent(ref, "sato")
    sim.clock.advance(30)
    sim.hangup(ref)
    with session_factory() as s:
        return sato, s.query(Call).filter_by(ref=ref).one().id


def test_the_wrap_up_takes_only_a_code_of_the_centers_list(client_as: ClientAs, in_wrap_up: tuple[Any, int]) -> None:
    sato, call_id = in_wrap_up
    client_as(Role.ADMIN).put("/api/v1/dispositions", json={"dispositions": [OWN[0], OWN[2]]})
    for refused in ("受注", "資料送付", "<script>alert(1)</script>"):  # a default, a never-listed code, markup
        r = sato.post(f"/api/v1/calls/{call_id}/wrap-up", json={"disposition": refused, "notes": "メモ"})
        assert r.status_code == 422, r.text
        assert [e["field"] for e in r.json()["errors"]] == ["disposition"]
    assert sato.get(f"/api/v1/calls/{call_id}").json()["state"] == "wrap_up"  # nothing lost: still to close
    done = sato.post(f"/api/v1/calls/{call_id}/wrap-up", json={"disposition": " 成約 ", "notes": "メモ"})
    assert done.status_code == 200 and done.json()["disposition"] == "成約"


def test_a_retired_code_no_longer_closes_a_call(client_as: ClientAs, in_wrap_up: tuple[Any, int]) -> None:
    sato, call_id = in_wrap_up
    admin = client_as(Role.ADMIN)
    admin.put("/api/v1/dispositions", json={"dispositions": OWN})
    admin.put("/api/v1/dispositions", json={"dispositions": OWN[:1]})
    assert sato.post(f"/api/v1/calls/{call_id}/wrap-up", json={"disposition": "再架電"}).status_code == 422
    assert sato.post(f"/api/v1/calls/{call_id}/wrap-up", json={"disposition": "成約"}).status_code == 200


def test_the_desk_offers_the_centers_codes_as_text(client_as: ClientAs) -> None:
    admin = client_as(Role.ADMIN)
    own = [{"code": "<b>成約</b>", "label_en": "<i>Won</i>", "kind": "sale"}, OWN[1]]
    assert admin.put("/api/v1/dispositions", json={"dispositions": own}).status_code == 200
    sato = client_as(Role.OPERATOR, username="sato")
    page = sato.get("/desk").text
    assert '<option value="&lt;b&gt;成約&lt;/b&gt;" data-kind="sale">&lt;b&gt;成約&lt;/b&gt;</option>' in page
    assert "<b>成約</b>" not in page and "受注" not in page
    english = sato.get("/desk?lang=en").text
    assert "&lt;i&gt;Won&lt;/i&gt;</option>" in english and ">資料送付</option>" in english  # no label: the code


def test_the_automatic_close_has_a_system_code_no_agent_may_choose(
    client_as: ClientAs, in_wrap_up: tuple[Any, int]
) -> None:
    """自動完了 is listed beside the defaults, never among them; even a center that names it cannot offer it."""
    assert AUTO_CLOSE.code == "自動完了" and AUTO_CLOSE in SYSTEM_CODES
    assert AUTO_CLOSE.code not in {d.code for d in DEFAULTS}
    sato, call_id = in_wrap_up
    r = sato.post(f"/api/v1/calls/{call_id}/wrap-up", json={"disposition": "自動完了"})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["disposition"]
    client_as(Role.ADMIN).put("/api/v1/dispositions", json={"dispositions": [OWN[0], {"code": "自動完了"}]})
    assert sato.post(f"/api/v1/calls/{call_id}/wrap-up", json={"disposition": "自動完了"}).status_code == 422


def test_the_wrap_up_service_checks_the_code_without_http(
    session_factory: sessionmaker[Session], in_wrap_up: tuple[Any, int]
) -> None:
    """The check is the calls service's (the route only maps errors); the system's own closers are trusted."""
    sato, call_id = in_wrap_up
    operator = Actor(tenant_id=sato.user.tenant_id, username="sato", role=Role.OPERATOR)
    with session_factory() as session:
        with pytest.raises(ValidationFailed) as refused:
            calls.finish_wrap_up(session, operator, call_id, "成約", utcnow())  # not in the defaults
        assert [e["field"] for e in refused.value.errors] == ["disposition"]
        call = calls.finish_wrap_up(session, operator, call_id, " 受注 ", utcnow(), notes="メモ")
        assert (call.state, call.disposition) == ("ended", "受注")
        session.rollback()
        system = Actor(tenant_id=sato.user.tenant_id, username="bench")
        assert calls.finish_wrap_up(session, system, call_id, "完了", utcnow()).disposition == "完了"
        session.rollback()
        ref = session.get(Call, call_id).ref  # type: ignore[union-attr]
        closed = calls.close_wrap_up_automatically(session, sato.user.tenant_id, ref, "sim", utcnow())
        assert closed is not None and closed.disposition == AUTO_CLOSE.code
        assert calls.close_wrap_up_automatically(session, sato.user.tenant_id, ref, "sim", utcnow()) is None
