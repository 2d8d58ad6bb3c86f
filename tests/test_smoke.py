from fastapi.testclient import TestClient


def test_health(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"


def test_create_and_pop(client: TestClient) -> None:
    r = client.post(
        "/api/v1/customers",
        json={"name": "山田 花子", "name_kana": "やまだ はなこ", "phones": [{"number": "03-1234-5678"}]},
    )
    assert r.status_code == 201, r.text
    pop = client.get("/api/v1/screenpop", params={"phone": "０３（１２３４）５６７８"}).json()
    assert pop["known"] is True
    assert pop["customer"]["name_kana"] == "ヤマダ ハナコ"
