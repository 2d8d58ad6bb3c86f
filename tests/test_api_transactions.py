"""One request = one transaction, committed before the response leaves."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from conftest import MakeUser
from kakehashi.app import create_app
from kakehashi.auth import service as auth
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Role


@pytest.fixture
def failing_commit() -> Iterator[None]:
    def refuse(session: Session) -> None:
        if session.info.get("refuse_commit"):
            raise RuntimeError("commit refused by the test")

    event.listen(Session, "before_commit", refuse)
    yield
    event.remove(Session, "before_commit", refuse)


def test_given_commit_fails_then_client_gets_an_error_not_201(
    settings: Settings,
    session_factory: sessionmaker[Session],
    session: Session,
    make_user: MakeUser,
    failing_commit: None,
) -> None:
    """With FastAPI's default dependency scope the commit would run after the 201 was sent."""

    def factory() -> Session:
        s = session_factory()
        s.info["refuse_commit"] = True
        return s

    app = create_app(settings, session_factory=session_factory)
    secret, _ = auth.issue_token(session, make_user(Role.OPERATOR), "test")
    session.flush()
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {secret}"
        app.state.session_factory = factory
        r = client.post("/api/v1/customers", json={"name": "保存されない", "phones": [{"number": "03-5555-1234"}]})
        assert r.status_code == 500
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "commit refused" not in r.text  # internals are not leaked
        app.state.session_factory = session_factory
        assert client.get("/api/v1/screenpop", params={"phone": "03-5555-1234"}).json()["known"] is False


def test_data_is_readable_by_the_next_request(client: TestClient) -> None:
    for i in range(20):
        number = f"090-2000-{i:04d}"
        assert (
            client.post("/api/v1/customers", json={"name": f"客{i}", "phones": [{"number": number}]}).status_code == 201
        )
        assert client.get("/api/v1/screenpop", params={"phone": number}).json()["known"] is True
