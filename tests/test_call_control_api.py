"""Call control over HTTP with the simulator running in the app: the calls in progress, answer, hold, the
attended transfer between two operators (with the consulted agent's screen pop), blind transfers, hang-up,
and who may do what (only the agent on the call; supervisors any call of their tenant; nobody another's)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import ClientAs
from kakehashi.kit.context import Role
from kakehashi.telephony.drivers.sim.driver import SimDriver

NUMBER = "0120-777-777"


@pytest.fixture
def floor(client_as: ClientAs) -> dict[str, Any]:
    """Two operators (sato, suzuki) in the orders queue, both available, whose phones ring until answered
    from the desktop; a supervisor; a supervisor of another tenant; one caller ringing at sato."""
    admin = client_as(Role.ADMIN)
    sato = client_as(Role.OPERATOR, username="sato")
    suzuki = client_as(Role.OPERATOR, username="suzuki")
    supervisor = client_as(Role.SUPERVISOR)
    stranger = client_as(Role.SUPERVISOR, "tenant-b")
    queue = admin.post("/api/v1/queues", json={"name": "orders", "ring_timeout_s": 300, "wrap_up_s": 300}).json()
    admin.post("/api/v1/queues", json={"name": "support", "ring_timeout_s": 300, "wrap_up_s": 300})
    for name, display in (("sato", "佐藤"), ("suzuki", "鈴木")):
        assert admin.post("/api/v1/agents", json={"name": name, "display_name": display}).status_code == 201
    admin.put(f"/api/v1/queues/{queue['id']}/members", json={"members": {"sato": 1, "suzuki": 1}})
    admin.post("/api/v1/inbound-numbers", json={"number": NUMBER, "queue": "orders"})
    sim: SimDriver = admin.app.state.telephony.driver  # type: ignore[attr-defined]
    for name in ("sato", "suzuki"):
        sim.set_agent(name, answers=False)
    assert sato.post("/api/v1/agents/me/state", json={"state": "available"}).status_code == 200
    sim.incoming(ani="03-1234-5678", dnis=NUMBER)  # sato is idle longest: it rings at sato
    assert suzuki.post("/api/v1/agents/me/state", json={"state": "available"}).status_code == 200
    (call,) = sato.get("/api/v1/calls/live").json()
    return {"admin": admin, "sato": sato, "suzuki": suzuki, "supervisor": supervisor, "stranger": stranger,
            "sim": sim, "call": call}  # fmt: skip


def live(client: TestClient) -> list[dict[str, Any]]:
    r = client.get("/api/v1/calls/live")
    assert r.status_code == 200, r.text
    result: list[dict[str, Any]] = r.json()
    return result


def my_state(client: TestClient) -> str:
    state: str = client.get("/api/v1/agents/me").json()["state"]
    return state


def bearer(c: TestClient) -> dict[str, str]:
    return {"Authorization": c.headers["Authorization"]}


def test_the_agent_answers_holds_and_transfers_with_a_consultation(floor: dict[str, Any]) -> None:
    sato, suzuki, supervisor = floor["sato"], floor["suzuki"], floor["supervisor"]
    call_id = floor["call"]["call_id"]
    assert (floor["call"]["state"], floor["call"]["agent"], floor["call"]["ani_masked"]) == (
        "ringing", "sato", "03-****-5678"
    )  # fmt: skip
    assert live(suzuki) == []  # not theirs
    assert suzuki.post(f"/api/v1/calls/{call_id}/answer").status_code == 404
    assert sato.post(f"/api/v1/calls/{call_id}/answer").status_code == 204
    assert live(sato)[0]["state"] == "connected" and my_state(sato) == "on_call"

    assert sato.post(f"/api/v1/calls/{call_id}/hold", json={"on": True}).status_code == 204
    assert live(supervisor)[0]["on_hold"] is True
    assert sato.post(f"/api/v1/calls/{call_id}/hold", json={"on": False}).status_code == 204

    with suzuki.websocket_connect("/api/v1/events", headers=bearer(suzuki)) as ws:
        ws.receive_json()  # hello
        r = sato.post(f"/api/v1/calls/{call_id}/transfer", json={"to": "agent", "target": "suzuki", "attended": True})
        assert r.status_code == 202, r.text
        event = ws.receive_json()
        while event.get("name") != "call.consult":
            event = ws.receive_json()
        assert event["payload"]["consult"] == "ringing" and event["payload"]["target"] == "suzuki"
        assert event["screen_pop"]["phone"]  # the colleague sees whom they may take over
    (consulted,) = live(suzuki)
    assert consulted["consult_agent"] == "suzuki" and consulted["on_hold"] is True
    r = sato.post(f"/api/v1/calls/{call_id}/transfer/complete")
    assert r.status_code == 409 and "no colleague" in r.json()["detail"]  # suzuki has not picked up yet
    assert suzuki.post(f"/api/v1/calls/{call_id}/answer").status_code == 204
    assert sato.post(f"/api/v1/calls/{call_id}/transfer/complete").status_code == 204

    (now,) = live(suzuki)
    assert (now["agent"], now["state"], now["on_hold"], now["consult_agent"]) == ("suzuki", "connected", False, None)
    assert live(sato) == [] and my_state(sato) == "wrap_up"
    assert sato.post(f"/api/v1/calls/{call_id}/hangup").status_code == 404  # no longer sato's call
    assert sato.post("/api/v1/agents/me/wrap-up-done").status_code == 204
    assert my_state(sato) == "available"
    assert sato.post("/api/v1/agents/me/wrap-up-done").status_code == 409

    assert suzuki.post(f"/api/v1/calls/{call_id}/hangup").status_code == 204
    assert my_state(suzuki) == "wrap_up"
    assert suzuki.post(f"/api/v1/calls/{call_id}/wrap-up", json={"disposition": "受注"}).status_code == 200
    detail = supervisor.get(f"/api/v1/calls/{call_id}").json()
    assert (detail["state"], detail["agent"], detail["transferred_to"]) == ("ended", "suzuki", "suzuki")
    assert [t["to_state"] for t in detail["transitions"]][-3:] == ["connected", "wrap_up", "ended"]


def test_blind_transfers_into_a_queue_and_out_of_the_center(floor: dict[str, Any]) -> None:
    sato, supervisor = floor["sato"], floor["supervisor"]
    call_id = floor["call"]["call_id"]
    sato.post(f"/api/v1/calls/{call_id}/answer")
    r = sato.post(f"/api/v1/calls/{call_id}/transfer", json={"to": "queue", "target": "nowhere"})
    assert r.status_code == 409 and "no queue nowhere" in r.json()["detail"]
    r = sato.post(f"/api/v1/calls/{call_id}/transfer", json={"to": "queue", "target": "support", "attended": True})
    assert r.status_code == 409  # a consultation is with an agent
    assert sato.post(f"/api/v1/calls/{call_id}/transfer", json={"to": "queue", "target": "support"}).status_code == 202
    (waiting,) = live(supervisor)
    assert (waiting["state"], waiting["queue"]) == ("queued", "support")  # nobody in support: it waits
    assert my_state(sato) == "wrap_up"

    second = floor["sim"].incoming(ani="03-2222-3333", dnis=NUMBER)  # rings at suzuki (sato is wrapping up)
    (ringing,) = [c for c in live(supervisor) if c["call_ref"] == second]
    suzuki = floor["suzuki"]
    suzuki.post(f"/api/v1/calls/{ringing['call_id']}/answer")
    r = suzuki.post(f"/api/v1/calls/{ringing['call_id']}/transfer", json={"to": "number", "target": "0312345679"})
    assert r.status_code == 202
    assert ringing["call_id"] not in [c["call_id"] for c in live(supervisor)]
    assert supervisor.get(f"/api/v1/calls/{ringing['call_id']}").json()["state"] == "transferred"


def test_another_tenants_or_agents_call_cannot_be_controlled(floor: dict[str, Any]) -> None:
    sato, suzuki, stranger, supervisor = floor["sato"], floor["suzuki"], floor["stranger"], floor["supervisor"]
    call_id = floor["call"]["call_id"]
    sato.post(f"/api/v1/calls/{call_id}/answer")
    commands: list[tuple[str, dict[str, Any] | None]] = [
        ("answer", None), ("hold", {"on": True}), ("hangup", None),
        ("transfer", {"to": "agent", "target": "suzuki"}), ("transfer/complete", None), ("transfer/cancel", None),
    ]  # fmt: skip
    for path, body in commands:
        for outsider in (suzuki, stranger):
            r = outsider.post(f"/api/v1/calls/{call_id}/{path}", json=body)
            assert r.status_code == 404, (path, r.text)
    assert stranger.post(f"/api/v1/calls/{call_id}/monitor", json={"on": True}).status_code == 404
    assert suzuki.post(f"/api/v1/calls/{call_id}/monitor", json={"on": True}).status_code == 403
    assert live(stranger) == []
    assert live(supervisor)[0]["can_monitor"] is True and live(sato)[0]["can_monitor"] is False
    assert supervisor.post(f"/api/v1/calls/{call_id}/monitor", json={"on": True}).status_code == 204
    assert supervisor.post(f"/api/v1/calls/{call_id}/monitor", json={"on": False}).status_code == 204
    assert supervisor.post(f"/api/v1/calls/{call_id}/hold", json={"on": True}).status_code == 204  # any call
    assert live(sato)[0]["on_hold"] is True


def test_without_telephony_call_commands_are_refused(client_as: ClientAs, settings: Any) -> None:
    settings.telephony_driver = "none"
    operator = client_as(Role.OPERATOR, username="kato")
    assert operator.get("/api/v1/calls/live").json() == []
    r = operator.post("/api/v1/calls/1/hold", json={"on": True})
    assert r.status_code == 409 and "no telephony" in r.json()["detail"]
