"""Queries of the customer master, always scoped to one tenant."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import BindParameter, ColumnElement, Select, and_, bindparam, case, func, or_, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session, joinedload, selectinload
from sqlalchemy.sql.expression import any_
from sqlalchemy.types import String

from kakehashi.customers.models import Customer, CustomerPhone, CustomFieldDef
from kakehashi.kit.repository import TenantRepository

# Larger than any code point: ``key < prefix + _TOP`` bounds a prefix range on a "C"-collated index.
_TOP = "\U0010ffff"


def _card_by_phone_statement() -> Select[Any]:
    c, p = Customer.__table__, CustomerPhone.__table__
    owner = p.alias("owner")
    tenant: BindParameter[int] = bindparam("tenant_id")
    return (
        select(c, *(p.c[key].label(f"phone_{key}") for key in _PHONE_KEYS))
        .select_from(owner.join(c, c.c.id == owner.c.customer_id).join(p, p.c.customer_id == c.c.id))
        .where(owner.c.tenant_id == tenant, owner.c.e164 == bindparam("e164"), c.c.tenant_id == tenant)
        .order_by(p.c.id)
    )


_CUSTOMER_KEYS = tuple(Customer.__table__.columns.keys())
_PHONE_KEYS = ("id", "e164", "national", "kind", "label", "is_primary")
_CARD_BY_PHONE = _card_by_phone_statement()


def _card_by_id_statement() -> Select[Any]:
    c, p = Customer.__table__, CustomerPhone.__table__
    return (
        select(c, *(p.c[key].label(f"phone_{key}") for key in _PHONE_KEYS))
        .select_from(c.outerjoin(p, p.c.customer_id == c.c.id))
        .where(c.c.id == bindparam("customer_id"), c.c.tenant_id == bindparam("tenant_id"))
        .order_by(p.c.id)
    )


_CARD_BY_ID = _card_by_id_statement()


def _within_family(column: Any, prefix: str) -> ColumnElement[bool]:
    """``column`` (a name or reading as stored: one half-width space between family and given name) starts
    with ``prefix`` (which has no space) inside its family name. A name written without a space shows only its
    first character when masked (``山＊＊``), so it matches only a one-character prefix."""
    condition: ColumnElement[bool] = column.startswith(prefix, autoescape=True)
    if len(prefix) > 1:
        condition = condition & column.contains(" ")
    return condition


def _family_condition(family: tuple[str, str]) -> ColumnElement[bool]:
    name, reading = family
    return or_(_within_family(Customer.name, name), _within_family(Customer.name_kana, reading))


_fd = CustomFieldDef.__table__
_ACTIVE_LABELS = (
    select(_fd.c.key, _fd.c.label, _fd.c.type)
    .where(_fd.c.tenant_id == bindparam("tenant_id"), _fd.c.active.is_(True))
    .order_by(_fd.c.position, _fd.c.id)
)


def _block_reason() -> ColumnElement[str | None]:
    """Why a customer may not be called, as ``customers.service.contact_blocks`` names it, or NULL."""
    return case(
        (Customer.do_not_contact, "do_not_contact"), (Customer.outbound_excluded, "outbound_excluded"), else_=None
    )


def number_block(e164: ColumnElement[str], tenant: ColumnElement[int]) -> ColumnElement[str | None]:
    """The reason the owner of the number ``e164`` (a column of the enclosing statement) in ``tenant`` may not be
    called, or NULL: a correlated subquery, one probe of the unique (tenant_id, e164) index."""
    return (
        select(_block_reason())
        .select_from(CustomerPhone)
        .join(Customer, Customer.id == CustomerPhone.customer_id)
        .where(
            CustomerPhone.tenant_id == tenant,
            CustomerPhone.e164 == e164,
            Customer.tenant_id == tenant,
            or_(Customer.do_not_contact, Customer.outbound_excluded),
        )
        .limit(1)
        .scalar_subquery()
    )


def customer_block(customer_id: ColumnElement[int | None], tenant: ColumnElement[int]) -> ColumnElement[str | None]:
    """The same for the customer of id ``customer_id`` (a column; NULL gives NULL)."""
    return (
        select(_block_reason())
        .where(
            Customer.id == customer_id,
            Customer.tenant_id == tenant,
            or_(Customer.do_not_contact, Customer.outbound_excluded),
        )
        .limit(1)
        .scalar_subquery()
    )


class CustomerRepository(TenantRepository):
    def get(self, customer_id: int, *, with_phones: bool = True) -> Customer | None:
        stmt = select(Customer).where(Customer.id == customer_id)
        if with_phones:
            stmt = stmt.options(selectinload(Customer.phones))
        return self.session.scalars(self.scoped(stmt, Customer)).one_or_none()

    def _numbers_in(self, e164s: Sequence[str]) -> ColumnElement[bool]:
        """``customer_phones.e164`` among ``e164s``: on PostgreSQL one array parameter (an IN list of a thousand
        bound values cost ~30 ms a query to parse and plan — a campaign list asks two a batch), else IN."""
        if self.session.get_bind().dialect.name == "postgresql":
            return CustomerPhone.e164 == any_(bindparam("numbers", list(e164s), type_=postgresql.ARRAY(String())))
        return CustomerPhone.e164.in_(list(e164s))

    def blocked_numbers(self, e164s: Sequence[str]) -> list[tuple[str, bool]]:
        """(number, do_not_contact) for those of ``e164s`` whose customer is do-not-contact or outbound-excluded."""
        stmt = (
            select(CustomerPhone.e164, Customer.do_not_contact)
            .join(Customer, Customer.id == CustomerPhone.customer_id)
            .where(
                CustomerPhone.tenant_id == self.tenant_id,
                self._numbers_in(e164s),
                or_(Customer.do_not_contact, Customer.outbound_excluded),
            )
        )
        return [(row.e164, row.do_not_contact) for row in self.session.execute(stmt)]

    def rank_of(self, customer_id: int) -> str | None:
        """The customer's rank, or None when the tenant has no such customer (one narrow read)."""
        return self.session.scalar(self.scoped(select(Customer.rank).where(Customer.id == customer_id), Customer))

    @staticmethod
    def owner_tenant(session: Session, customer_id: int) -> int | None:
        """Unscoped on purpose (see ``customers.service.tenant_of_customer``)."""
        return session.scalar(select(Customer.tenant_id).where(Customer.id == customer_id))

    def existing_ids(self, customer_ids: Sequence[int]) -> set[int]:
        from sqlalchemy import BigInteger, any_  # here: the module's imports are shared with other work
        from sqlalchemy.dialects.postgresql import ARRAY

        found: set[int] = set()
        postgres = self.session.get_bind().dialect.name == "postgresql"
        step = (len(customer_ids) or 1) if postgres else 1000  # PostgreSQL: one array parameter, any length
        for start in range(0, len(customer_ids), step):
            chunk = list(customer_ids[start : start + step])
            # An IN list of 1,000 bound values costs ~20 ms of Python to compile and the server to plan.
            among = Customer.id == any_(bindparam("ids", chunk, type_=ARRAY(BigInteger()))) if postgres else None
            # By primary key first, then the tenant: given both at once, PostgreSQL may walk the whole tenant
            # through a (tenant_id, …) index when a freshly loaded table has no statistics (the import's cost
            # per batch then grew with the table).
            by_id = (
                select(Customer.id, Customer.tenant_id)
                .where(among if among is not None else Customer.id.in_(chunk))
                .cte("by_id")
                .prefix_with("MATERIALIZED")
            )
            found.update(self.session.scalars(self.scoped(select(by_id.c.id), by_id.c)))
        return found

    def exists(self, customer_id: int) -> bool:
        stmt = self.scoped(select(Customer.id).where(Customer.id == customer_id), Customer)
        return self.session.execute(stmt).first() is not None

    def add(self, customer: Customer) -> Customer:
        customer.tenant_id = self.tenant_id
        for phone in customer.phones:
            phone.tenant_id = self.tenant_id
        self.session.add(customer)
        self.session.flush()
        return customer

    def get_by_phone(self, e164: str) -> Customer | None:
        """The customer owning a number, with all its numbers, in one statement (screen pop)."""
        owner = (
            select(CustomerPhone.customer_id)
            .where(CustomerPhone.tenant_id == self.tenant_id, CustomerPhone.e164 == e164)
            .scalar_subquery()
        )
        stmt = self.scoped(select(Customer).where(Customer.id == owner).options(joinedload(Customer.phones)), Customer)
        return self.session.scalars(stmt).unique().one_or_none()

    def card_by_phone(self, e164: str) -> dict[str, Any] | None:
        """Customer columns plus ``phones`` for the owner of a number, as plain dicts, in one statement.

        The screen pop's hot path: a prebuilt Core statement and plain rows instead of ORM objects.
        """
        return self._card(_CARD_BY_PHONE, {"tenant_id": self.tenant_id, "e164": e164})

    def card_by_id(self, customer_id: int) -> dict[str, Any] | None:
        """Same as :meth:`card_by_phone`, for a customer opened from a list (may have no number)."""
        return self._card(_CARD_BY_ID, {"tenant_id": self.tenant_id, "customer_id": customer_id})

    def _card(self, stmt: Select[Any], params: dict[str, Any]) -> dict[str, Any] | None:
        rows = self.session.execute(stmt, params).mappings().all()
        if not rows:
            return None
        card = {key: rows[0][key] for key in _CUSTOMER_KEYS}
        card["phones"] = [{key: r[f"phone_{key}"] for key in _PHONE_KEYS} for r in rows if r["phone_id"] is not None]
        return card

    def find_id_by_phone(self, e164: str) -> int | None:
        """The one indexed lookup behind the screen pop (unique (tenant_id, e164))."""
        stmt = select(CustomerPhone.customer_id).where(
            CustomerPhone.tenant_id == self.tenant_id, CustomerPhone.e164 == e164
        )
        return self.session.execute(stmt).scalar_one_or_none()

    def phone_owners(self, e164s: Sequence[str]) -> dict[str, int]:
        """Which customer owns each of these numbers (only numbers that are taken)."""
        if not e164s:
            return {}
        stmt = select(CustomerPhone.e164, CustomerPhone.customer_id).where(
            CustomerPhone.tenant_id == self.tenant_id, self._numbers_in(e164s)
        )
        return {e164: cid for e164, cid in self.session.execute(stmt)}

    def suggest(
        self, key: str, limit: int, *, family: tuple[str, str] | None = None
    ) -> list[tuple[Customer, str | None]]:
        """Customers whose name key or kana key starts with ``key``, with their primary number; with
        ``family`` (name, reading prefixes) only those whose family name or reading starts with them."""
        upper = key + _TOP
        ids_by_name = self.scoped(
            select(Customer.id, Customer.name_key.label("k"))
            .where(Customer.name_key >= key, Customer.name_key < upper)
            .order_by(Customer.name_key, Customer.id)
            .limit(limit),
            Customer,
        )
        ids_by_kana = self.scoped(
            select(Customer.id, Customer.kana_key.label("k"))
            .where(Customer.kana_key >= key, Customer.kana_key < upper)
            .order_by(Customer.kana_key, Customer.id)
            .limit(limit),
            Customer,
        )
        if family is not None:
            ids_by_name = ids_by_name.where(_within_family(Customer.name, family[0]))
            ids_by_kana = ids_by_kana.where(_within_family(Customer.name_kana, family[1]))
        found: dict[int, str] = {}
        for cid, k in [*self.session.execute(ids_by_kana), *self.session.execute(ids_by_name)]:
            found.setdefault(cid, k)
        ordered = sorted(found, key=lambda cid: (found[cid], cid))[:limit]
        if not ordered:
            return []
        customers = {c.id: c for c in self.session.scalars(select(Customer).where(Customer.id.in_(ordered)))}
        phones: dict[int, str] = {}
        phone_rows = self.session.execute(
            select(CustomerPhone.customer_id, CustomerPhone.national, CustomerPhone.is_primary)
            .where(CustomerPhone.customer_id.in_(ordered))
            .order_by(CustomerPhone.is_primary.desc(), CustomerPhone.id)
        )
        for cid, national, _primary in phone_rows:
            phones.setdefault(cid, national)
        return [(customers[cid], phones.get(cid)) for cid in ordered]

    def search(
        self,
        *,
        name_key: str | None = None,
        family: tuple[str, str] | None = None,
        filters: Sequence[Any] = (),
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Customer], int]:
        """``family`` (name, reading prefixes): the name search of a masked viewer, inside the family name."""
        stmt: Select[Any] = self.scoped(select(Customer), Customer)
        if name_key:
            upper = name_key + _TOP
            stmt = stmt.where(
                or_(
                    (Customer.name_key >= name_key) & (Customer.name_key < upper),
                    (Customer.kana_key >= name_key) & (Customer.kana_key < upper),
                )
            )
            if family is not None:
                stmt = stmt.where(_family_condition(family))
        for condition in filters:
            stmt = stmt.where(condition)
        total = self.session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
        page = stmt.options(selectinload(Customer.phones)).order_by(Customer.id).limit(limit).offset(offset)
        return list(self.session.scalars(page)), total

    # -- target extraction (campaigns.segments composes these statements; they are not run here)
    def segment_ids(
        self, conditions: Sequence[ColumnElement[bool]], include: Sequence[Select[Any]], exclude: Sequence[Select[Any]]
    ) -> Select[Any]:
        """The ids of the tenant's customers meeting every condition, in every ``include`` and in no ``exclude``
        statement (each a ``Select`` of customer ids)."""
        stmt = self.scoped(select(Customer.id).where(*conditions), Customer)
        for ids in include:
            stmt = stmt.where(Customer.id.in_(ids))
        for ids in exclude:
            stmt = stmt.where(Customer.id.not_in(ids))
        return stmt

    def outreach_rows(self, ids: Select[Any]) -> Select[Any]:
        """Per customer of ``ids`` — a statement of :meth:`segment_ids`, whose FROM and WHERE it reuses (no second
        pass over the customers) —: ``customer_id``, ``e164`` (the main number: the primary, else the oldest;
        null without any) and ``block`` (``do_not_contact``, ``outbound_excluded`` or null).

        The main numbers are one ranked pass over the tenant's numbers, joined: a subquery per customer costs
        ~1 s per 100,000 customers on PostgreSQL."""
        order = (CustomerPhone.is_primary.desc(), CustomerPhone.id)
        ranked = self.scoped(
            select(
                CustomerPhone.customer_id,
                CustomerPhone.e164,
                func.row_number().over(partition_by=CustomerPhone.customer_id, order_by=order).label("n"),
            ),
            CustomerPhone,
        ).subquery("main_phone")
        block = case(
            (Customer.do_not_contact, "do_not_contact"), (Customer.outbound_excluded, "outbound_excluded"), else_=None
        )
        columns = (Customer.id.label("customer_id"), ranked.c.e164.label("e164"), block.label("block"))
        on = and_(ranked.c.customer_id == Customer.id, ranked.c.n == 1)
        return ids.with_only_columns(*columns).outerjoin_from(Customer, ranked, on)


class CustomFieldRepository(TenantRepository):
    def all(self, *, active_only: bool = False) -> list[CustomFieldDef]:
        stmt = self.scoped(select(CustomFieldDef), CustomFieldDef).order_by(CustomFieldDef.position, CustomFieldDef.id)
        if active_only:
            stmt = stmt.where(CustomFieldDef.active.is_(True))
        return list(self.session.scalars(stmt))

    def active_labels(self) -> list[tuple[str, str, str]]:
        """(key, label, type) of the active fields in display order (screen pop)."""
        return [(k, label, t) for k, label, t in self.session.execute(_ACTIVE_LABELS, {"tenant_id": self.tenant_id})]

    def by_key(self) -> dict[str, CustomFieldDef]:
        return {d.key: d for d in self.all()}

    def get(self, key: str) -> CustomFieldDef | None:
        stmt = self.scoped(select(CustomFieldDef).where(CustomFieldDef.key == key), CustomFieldDef)
        return self.session.scalars(stmt).one_or_none()

    def add(self, defn: CustomFieldDef) -> CustomFieldDef:
        defn.tenant_id = self.tenant_id
        self.session.add(defn)
        self.session.flush()
        return defn
