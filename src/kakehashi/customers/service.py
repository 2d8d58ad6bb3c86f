"""Customer master logic. No HTTP here; services flush and never commit."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from sqlalchemy import ColumnElement, Select, and_
from sqlalchemy.orm import Session

from kakehashi.audit import service as audit
from kakehashi.customers import custom_fields
from kakehashi.customers.models import Customer, CustomerPhone, CustomFieldDef
from kakehashi.customers.repository import CustomerRepository, CustomFieldRepository, customer_block, number_block
from kakehashi.customers.schemas import (
    CustomerCreate,
    CustomerUpdate,
    CustomFieldCreate,
    CustomFieldUpdate,
    PhoneIn,
)
from kakehashi.kit.clock import business_today
from kakehashi.kit.context import Actor
from kakehashi.kit.errors import Conflict, Forbidden, NotFound, ValidationFailed, field_error
from kakehashi.kit.events import Event, publish_on_commit
from kakehashi.kit.phone import InvalidPhone, parse_phone
from kakehashi.kit.text import clean, is_kana_reading, search_key, to_katakana
from kakehashi.postal.service import postal_digits

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SUGGEST_LIMIT = 10

_ADDRESS_FIELDS = ("prefecture", "city", "town", "street", "building", "notes")


def normalized_fields(data: dict[str, Any], errors: list[dict[str, Any]]) -> dict[str, Any]:
    """Clean and check the plain fields present in ``data``; append problems to ``errors``."""
    out: dict[str, Any] = {}
    if "name" in data:
        name = clean(data["name"])
        if not name:
            errors.append(field_error("name", "name is required"))
        else:
            out["name"] = name
            out["name_key"] = search_key(name)
    if "name_kana" in data:
        reading = clean(data["name_kana"])
        if reading and not is_kana_reading(reading):
            errors.append(field_error("name_kana", "reading must be kana (カタカナ or ひらがな)"))
        else:
            out["name_kana"] = to_katakana(reading) if reading else None
            out["kana_key"] = search_key(reading) if reading else None
    if "gender" in data:
        out["gender"] = str(data["gender"]) if data["gender"] else None
    if "birthday" in data:
        birthday = data["birthday"]
        if birthday and (birthday > business_today() or birthday.year < 1890):
            errors.append(field_error("birthday", "birthday must be in the past (after 1890)"))
        else:
            out["birthday"] = birthday
    if "postal_code" in data:
        raw = data["postal_code"]
        if raw and str(raw).strip():
            code = postal_digits(str(raw))
            if code is None:
                errors.append(field_error("postal_code", f"'{raw}' is not a 7-digit postal code"))
            else:
                out["postal_code"] = code
        else:
            out["postal_code"] = None
    if "email" in data:
        email = clean(data["email"])
        if email and not _EMAIL.match(email):
            errors.append(field_error("email", f"'{email}' is not an email address"))
        else:
            out["email"] = email.lower() if email else None
    for key in _ADDRESS_FIELDS:
        if key in data:
            out[key] = data[key].strip() if key == "notes" and data[key] else clean(data[key])
    if "rank" in data:
        out["rank"] = (clean(data["rank"]) or "normal").lower() if data["rank"] is not None else "normal"
    return out


#: Public name of the field check, shared with the bulk importer (same rules as the API).


def _build_phones(
    repo: CustomerRepository,
    phones: list[PhoneIn],
    region: str,
    errors: list[dict[str, Any]],
    owner_id: int | None = None,
) -> list[CustomerPhone]:
    built: list[CustomerPhone] = []
    seen: set[str] = set()
    for i, item in enumerate(phones):
        try:
            parsed = parse_phone(item.number, region)
        except InvalidPhone as exc:
            errors.append(field_error(f"phones[{i}].number", str(exc)))
            continue
        if parsed.e164 in seen:
            errors.append(field_error(f"phones[{i}].number", f"{parsed.national} is listed twice"))
            continue
        seen.add(parsed.e164)
        built.append(
            CustomerPhone(
                e164=parsed.e164,
                national=parsed.national,
                kind=parsed.kind,
                label=clean(item.label),
                is_primary=item.is_primary,
            )
        )
    owners = repo.phone_owners([p.e164 for p in built])
    for i, phone in enumerate(built):
        owner = owners.get(phone.e164)
        if owner is not None and owner != owner_id:
            errors.append(
                field_error(
                    f"phones[{i}].number",
                    f"{phone.national} already belongs to customer {owner}",
                    customer_id=owner,
                )
            )
    if built and not any(p.is_primary for p in built):
        built[0].is_primary = True
    elif sum(p.is_primary for p in built) > 1:
        errors.append(field_error("phones", "only one number can be primary"))
    return built


def _raise_if(errors: list[dict[str, Any]]) -> None:
    if not errors:
        return
    if all("customer_id" in e for e in errors):  # only numbers owned by another customer
        raise Conflict("phone number already in use", errors=errors)
    raise ValidationFailed(f"{len(errors)} field(s) are invalid", errors=errors)


def create_customer(session: Session, actor: Actor, data: CustomerCreate, *, region: str = "JP") -> Customer:
    """Validate and store a new customer with its numbers and custom fields."""
    repo = CustomerRepository(session, actor.tenant_id)
    errors: list[dict[str, Any]] = []
    fields = normalized_fields(data.model_dump(exclude={"phones", "custom"}), errors)
    phones = _build_phones(repo, data.phones, region, errors)
    defs = CustomFieldRepository(session, actor.tenant_id).by_key()
    custom, custom_errors = custom_fields.validate_values(defs, data.custom)
    _raise_if(errors + custom_errors)
    customer = Customer(**fields, custom=custom, phones=phones)
    repo.add(customer)
    audit.record(session, actor, "create", resource="customer", resource_id=customer.id, customer_id=customer.id)
    publish_on_commit(session, Event("customer.created", actor.tenant_id, {"customer_id": customer.id}))
    return customer


def update_customer(
    session: Session, actor: Actor, customer_id: int, data: CustomerUpdate, *, region: str = "JP"
) -> Customer:
    """Apply the fields present in ``data``; ``phones`` replaces the customer's numbers."""
    repo = CustomerRepository(session, actor.tenant_id)
    customer = get_customer(session, actor, customer_id)
    errors: list[dict[str, Any]] = []
    present = data.model_dump(exclude_unset=True, exclude={"phones", "custom"})
    fields = normalized_fields(present, errors)
    phones = _build_phones(repo, data.phones, region, errors, owner_id=customer.id) if data.phones else None
    custom = None
    if data.custom is not None:
        defs = CustomFieldRepository(session, actor.tenant_id).by_key()
        custom, custom_errors = custom_fields.validate_values(
            defs, data.custom, current=customer.custom, check_required=False
        )
        errors += custom_errors
    _raise_if(errors)
    for key, value in fields.items():
        setattr(customer, key, value)
    if custom is not None:
        customer.custom = custom
    if phones is not None:
        _replace_phones(repo, customer, phones)
    elif data.phones is not None:  # an empty list clears the numbers
        _replace_phones(repo, customer, [])
    session.flush()
    changed = sorted(
        {*fields, *(["custom"] if custom is not None else []), *(["phones"] if data.phones is not None else [])}
    )
    audit.record(
        session,
        actor,
        "update",
        resource="customer",
        resource_id=customer.id,
        customer_id=customer.id,
        detail={"fields": [f for f in changed if not f.endswith("_key")]},
    )
    publish_on_commit(session, Event("customer.updated", actor.tenant_id, {"customer_id": customer.id}))
    return customer


def _replace_phones(repo: CustomerRepository, customer: Customer, phones: list[CustomerPhone]) -> None:
    keep = {p.e164: p for p in phones}
    for existing in list(customer.phones):
        wanted = keep.pop(existing.e164, None)
        if wanted is None:
            customer.phones.remove(existing)
        else:
            existing.label, existing.is_primary = wanted.label, wanted.is_primary
    repo.session.flush()  # delete removed numbers before a re-added one hits the unique index
    for phone in keep.values():
        phone.tenant_id = repo.tenant_id
        customer.phones.append(phone)


def read_customer(session: Session, actor: Actor, customer_id: int) -> Customer:
    """The customer for showing to the actor: an audited read."""
    customer = get_customer(session, actor, customer_id)
    audit.record_customer_reads(session, actor, [customer.id])
    return customer


def get_customer(session: Session, actor: Actor, customer_id: int) -> Customer:
    """The customer for internal use (not audited), or :class:`NotFound` (also for another tenant's id)."""
    customer = CustomerRepository(session, actor.tenant_id).get(customer_id)
    if customer is None:
        raise NotFound(f"customer {customer_id} not found")
    return customer


#: Numbers per query when many are checked at once (a bound parameter each).
_NUMBERS_PER_QUERY = 1000


def contact_blocks(session: Session, actor: Actor, e164s: list[str]) -> dict[str, str]:
    """Per number whose customer may not be called, why: ``do_not_contact`` (APPI suspension of use) before
    ``outbound_excluded`` (complaints); numbers of customers free to call, or of no customer, are absent.
    One query per thousand numbers (campaign lists are checked in bulk)."""
    repo = CustomerRepository(session, actor.tenant_id)
    blocked: dict[str, str] = {}
    for start in range(0, len(e164s), _NUMBERS_PER_QUERY):
        for e164, do_not_contact in repo.blocked_numbers(e164s[start : start + _NUMBERS_PER_QUERY]):
            blocked[e164] = "do_not_contact" if do_not_contact else "outbound_excluded"
    return blocked


def contact_block_of_number(e164: ColumnElement[str], tenant: ColumnElement[int]) -> ColumnElement[str | None]:
    """:func:`contact_blocks` as SQL, for a statement of another domain that reads numbers in its own rows (a
    campaign's lead reservation reads a lead and its flags at once): ``e164`` is a column of that statement and
    ``tenant`` the tenant it is scoped to (a bound parameter the caller sets to the actor's tenant, as for its own
    rows); the expression is the reason — ``do_not_contact`` before ``outbound_excluded`` — of the number's owner,
    or NULL. Nothing here depends on the session, so the caller may build its statement once."""
    return number_block(e164, tenant)


def contact_block_of_customer(
    customer_id: ColumnElement[int | None], tenant: ColumnElement[int]
) -> ColumnElement[str | None]:
    """The same reason for the customer whose id is the column ``customer_id`` (NULL: no customer, no reason)."""
    return customer_block(customer_id, tenant)


def phone_owners(session: Session, actor: Actor, e164s: list[str]) -> dict[str, int]:
    """Per number (E.164) the id of the customer owning it in the actor's tenant; numbers of no customer are
    absent. One query per thousand numbers (a campaign list links its leads to their customers in bulk)."""
    repo = CustomerRepository(session, actor.tenant_id)
    owners: dict[str, int] = {}
    for start in range(0, len(e164s), _NUMBERS_PER_QUERY):
        owners.update(repo.phone_owners(e164s[start : start + _NUMBERS_PER_QUERY]))
    return owners


def rank_of(session: Session, actor: Actor, customer_id: int) -> str | None:
    """The customer's rank for routing (not audited: nothing personal), or None for no such customer."""
    return CustomerRepository(session, actor.tenant_id).rank_of(customer_id)


def existing_ids(session: Session, actor: Actor, customer_ids: list[int]) -> set[int]:
    """Which of these ids are customers of the actor's tenant (one query per 1,000 ids)."""
    return CustomerRepository(session, actor.tenant_id).existing_ids(customer_ids)


def require_customer(session: Session, actor: Actor, customer_id: int) -> None:
    """Raise :class:`NotFound` unless the customer exists in the actor's tenant."""
    if not CustomerRepository(session, actor.tenant_id).exists(customer_id):
        raise NotFound(f"customer {customer_id} not found")


def tenant_of_customer(session: Session, customer_id: int) -> int | None:
    """The tenant owning a customer id, across tenants. Only for the security audit of refused requests;
    never use it to serve data."""
    return CustomerRepository.owner_tenant(session, customer_id)


def find_customer_by_phone(session: Session, actor: Actor, e164: str) -> Customer | None:
    """The customer owning the number in the actor's tenant, with its numbers loaded."""
    return CustomerRepository(session, actor.tenant_id).get_by_phone(e164)


def card_by_phone(session: Session, actor: Actor, e164: str) -> dict[str, Any] | None:
    """Customer fields and numbers of the number's owner as a plain dict (the screen pop's read path)."""
    return CustomerRepository(session, actor.tenant_id).card_by_phone(e164)


def card_by_id(session: Session, actor: Actor, customer_id: int) -> dict[str, Any] | None:
    """Like :func:`card_by_phone`, by customer id."""
    return CustomerRepository(session, actor.tenant_id).card_by_id(customer_id)


def find_customer_id_by_phone(session: Session, actor: Actor, e164: str) -> int | None:
    return CustomerRepository(session, actor.tenant_id).find_id_by_phone(e164)


def suggest(session: Session, actor: Actor, q: str, limit: int = SUGGEST_LIMIT) -> list[tuple[Customer, str | None]]:
    """Up to ``limit`` customers whose name or reading starts with ``q`` (kanji or any kana); for a masked
    viewer, whose family name starts with ``q`` (see :func:`family_query`)."""
    key = search_key(q)
    if not key:
        return []
    family = family_query(actor, q)
    found = CustomerRepository(session, actor.tenant_id).suggest(key, min(limit, 50), family=family)
    audit.record_customer_reads(session, actor, [c.id for c, _ in found])
    return found


def mark_caution(
    session: Session, actor: Actor, customer_id: int, reason: str, *, exclude_outbound: bool = True
) -> None:
    """Raise the caution flag (and exclude from outbound lists) — e.g. after a complaint."""
    customer = get_customer(session, actor, customer_id)
    customer.caution = True
    customer.caution_reason = reason
    if exclude_outbound:
        customer.outbound_excluded = True
        customer.excluded_reason = reason
    session.flush()
    audit.record(
        session,
        actor,
        "update",
        resource="customer",
        resource_id=customer_id,
        customer_id=customer_id,
        detail={"caution": reason, "outbound_excluded": exclude_outbound},
    )
    publish_on_commit(
        session,
        Event("customer.caution_raised", actor.tenant_id, {"customer_id": customer_id, "reason": reason}),
    )


def mark_do_not_contact(session: Session, actor: Actor, customer_id: int, reason: str) -> None:
    """Stop all contact (APPI suspension of use, 利用停止): do-not-contact plus outbound exclusion.

    Repeating it is harmless: the flags stay set and each request leaves its own audit row.
    """
    customer = get_customer(session, actor, customer_id)
    customer.do_not_contact = True
    customer.outbound_excluded = True
    customer.excluded_reason = reason
    session.flush()
    audit.record(
        session,
        actor,
        "update",
        resource="customer",
        resource_id=customer_id,
        customer_id=customer_id,
        detail={"do_not_contact": True, "outbound_excluded": True, "reason": reason},
    )
    publish_on_commit(
        session,
        Event("customer.do_not_contact", actor.tenant_id, {"customer_id": customer_id, "reason": reason}),
    )


# --- search with filters on built-in and custom fields ---------------------------------------

_OPS = {"eq", "ne", "gt", "gte", "lt", "lte", "contains"}

MASKED_NAME_QUERY = (
    "names are masked for your role (山田 ＊＊): search by the family name or its reading only, without the given name"
)


def masked_field(field: str, message: str) -> Forbidden:
    """The refusal of a search or filter on a value the actor sees masked: a filter would confirm it."""
    return Forbidden(
        f"{field}: searching or filtering on values masked for your role is not allowed",
        errors=[field_error(field, message, code="masked")],
        code="masked_field",
    )


def family_query(actor: Actor, q: str) -> tuple[str, str] | None:
    """For an actor who sees names masked, the (name, reading) prefixes a name search may use, or None for an
    actor who sees names in full. Only the family name shows (``山田 ＊＊``), so the search stays inside it:
    ``q`` must be a prefix of the family name as written or of its reading. A ``q`` with a space would
    reach into the given name: refused (403, field ``q``)."""
    if actor.sees_personal_data:
        return None
    text = clean(q) or ""
    if " " in text:
        raise masked_field("q", MASKED_NAME_QUERY)
    return text, to_katakana(text)


def parse_filter(defs: dict[str, CustomFieldDef], expr: str, *, masked: bool = False) -> ColumnElement[bool]:
    """``key:op:value`` on a custom field (``children:gte:1``, ``married:eq:true``) → SQL condition.
    ``masked``: the actor sees text, date and choice values as ``***`` and may not filter on them (403)."""
    parts = expr.split(":", 2)
    if len(parts) != 3 or parts[1] not in _OPS:
        raise ValidationFailed(
            "bad filter", errors=[field_error("cf", f"'{expr}': use key:op:value, op in {sorted(_OPS)}")]
        )
    key, op, raw = parts
    defn = defs.get(key)
    if defn is None:
        raise ValidationFailed("bad filter", errors=[field_error("cf", f"unknown custom field '{key}'")])
    if masked and defn.type in custom_fields.MASKED_TYPES:
        raise masked_field("cf", f"{key}: {defn.type} values are masked for your role; only number and yes/no "
                                 "fields can be filtered")  # fmt: skip
    try:
        value = custom_fields.coerce(defn, raw) if op != "contains" else raw
    except custom_fields.BadValue as exc:
        raise ValidationFailed("bad filter", errors=[field_error("cf", f"{key}: {exc}")]) from None
    element = Customer.custom[key]
    column: ColumnElement[Any]
    if defn.type == "number":
        column = element.as_float()
    elif defn.type == "boolean":
        column = element.as_boolean()
    else:
        column = element.as_string()
    if op == "contains":
        return column.contains(str(value))
    if defn.type == "boolean" and op not in ("eq", "ne"):
        raise ValidationFailed("bad filter", errors=[field_error("cf", f"{key}: yes/no fields take eq or ne")])
    return _COMPARE[op](column, value)


_COMPARE: dict[str, Callable[[ColumnElement[Any], Any], ColumnElement[bool]]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}


def search_customers(
    session: Session,
    actor: Actor,
    *,
    q: str | None = None,
    rank: str | None = None,
    prefecture: str | None = None,
    gender: str | None = None,
    age_min: int | None = None,
    age_max: int | None = None,
    custom_filters: list[str] | None = None,
    limit: int = 50,
    offset: int = 0,
    today: date | None = None,
) -> tuple[list[Customer], int]:
    """Customers matching every given condition (age from birthday, custom fields by type).

    A masked viewer (``actor.sees_personal_data`` false) searches only what it sees: ``q`` within the family
    name (:func:`family_query`), custom filters on numbers and yes/no only; the other filters (rank,
    prefecture, gender, age) are on values it sees in full."""
    today = today or business_today()
    defs = CustomFieldRepository(session, actor.tenant_id).by_key()
    masked = not actor.sees_personal_data
    conditions: list[ColumnElement[bool]] = [parse_filter(defs, f, masked=masked) for f in custom_filters or []]
    if rank:
        conditions.append(Customer.rank == rank.lower())
    if prefecture:
        conditions.append(Customer.prefecture == prefecture)
    if gender:
        conditions.append(Customer.gender == gender)
    if age_min is not None:  # born on or before today minus age_min years
        conditions.append(Customer.birthday <= _years_before(today, age_min))
    if age_max is not None:  # younger than age_max + 1
        conditions.append(Customer.birthday > _years_before(today, age_max + 1))
    key = search_key(q) if q else None
    family = family_query(actor, q) if key and q else None
    items, total = CustomerRepository(session, actor.tenant_id).search(
        name_key=key, family=family, filters=conditions, limit=limit, offset=offset
    )
    audit.record_customer_reads(session, actor, [c.id for c in items])
    return items, total


def _years_before(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


# --- custom field definitions ---------------------------------------------------------------


def active_field_labels(session: Session, actor: Actor) -> list[tuple[str, str, str]]:
    """(key, label, type) of the active custom fields, in display order."""
    return CustomFieldRepository(session, actor.tenant_id).active_labels()


def list_custom_fields(session: Session, actor: Actor) -> list[CustomFieldDef]:
    return CustomFieldRepository(session, actor.tenant_id).all()


def define_custom_field(session: Session, actor: Actor, data: CustomFieldCreate) -> CustomFieldDef:
    """Add a field at run time; no migration, values are stored with the customer."""
    repo = CustomFieldRepository(session, actor.tenant_id)
    if repo.get(data.key) is not None:
        raise Conflict(f"custom field '{data.key}' already exists", errors=[field_error("key", "already exists")])
    choices = _check_choices(data.type, data.choices)
    defn = CustomFieldDef(
        key=data.key,
        label=data.label.strip(),
        type=data.type.value,
        choices=choices,
        required=data.required,
        active=True,
        position=data.position,
    )
    return repo.add(defn)


def update_custom_field(session: Session, actor: Actor, key: str, data: CustomFieldUpdate) -> CustomFieldDef:
    """Change label, choices, required, order or active; the type never changes (values would break)."""
    defn = CustomFieldRepository(session, actor.tenant_id).get(key)
    if defn is None:
        raise NotFound(f"custom field '{key}' not found")
    changes = data.model_dump(exclude_unset=True)
    if "choices" in changes:
        changes["choices"] = _check_choices(defn.type, changes["choices"])
    for name, value in changes.items():
        if value is not None or name == "choices":
            setattr(defn, name, value)
    session.flush()
    return defn


def _check_choices(kind: str, choices: list[str] | None) -> list[str] | None:
    if kind != "choice":
        if choices:
            raise ValidationFailed("bad field", errors=[field_error("choices", "only choice fields have choices")])
        return None
    cleaned = [c for c in (clean(x) for x in choices or []) if c]
    if not cleaned:
        raise ValidationFailed("bad field", errors=[field_error("choices", "a choice field needs choices")])
    if len(set(cleaned)) != len(cleaned):
        raise ValidationFailed("bad field", errors=[field_error("choices", "choices must be unique")])
    return cleaned


# --- target extraction (ターゲット抽出, campaigns.segments) ------------------------------------------


def _custom_condition(defn: CustomFieldDef, cond: dict[str, Any], field: str) -> ColumnElement[bool]:
    """One condition of a segment on a custom field: ``equals`` (value), ``in`` (values) or ``range`` (min, max;
    numbers and dates), values coerced as the field's type stores them (a bad one: 422 on ``field``)."""
    op = cond["op"]
    if op == "range" and defn.type not in ("number", "date"):
        raise ValidationFailed("bad condition", errors=[field_error(f"{field}.op", "range: numbers and dates only")])
    if op == "in" and defn.type == "boolean":
        raise ValidationFailed("bad condition", errors=[field_error(f"{field}.op", "yes/no fields take equals")])

    def value(raw: Any, name: str) -> Any:
        try:
            coerced = custom_fields.coerce(defn, raw)
        except custom_fields.BadValue as exc:
            raise ValidationFailed("bad condition", errors=[field_error(f"{field}.{name}", str(exc))]) from None
        if coerced is None:
            raise ValidationFailed("bad condition", errors=[field_error(f"{field}.{name}", "empty")])
        return coerced

    element = Customer.custom[defn.key]
    column: ColumnElement[Any]
    if defn.type == "number":
        column = element.as_float()
    elif defn.type == "boolean":
        column = element.as_boolean()
    else:
        column = element.as_string()
    if op == "equals":
        equals: ColumnElement[bool] = column == value(cond["value"], "value")
        return equals
    if op == "in":
        return column.in_([value(v, f"values.{i}") for i, v in enumerate(cond["values"])])
    parts: list[ColumnElement[bool]] = []
    if cond.get("min") is not None:
        parts.append(column >= value(cond["min"], "min"))
    if cond.get("max") is not None:
        parts.append(column <= value(cond["max"], "max"))
    return and_(*parts)


def segment_ids(
    session: Session,
    actor: Actor,
    *,
    today: date,
    age_min: int | None = None,
    age_max: int | None = None,
    genders: Sequence[str] = (),
    prefectures: Sequence[str] = (),
    cities: Sequence[str] = (),
    ranks: Sequence[str] = (),
    custom: Sequence[dict[str, Any]] = (),
    custom_field: str = "custom",
    include: Sequence[Select[Any]] = (),
    exclude: Sequence[Select[Any]] = (),
) -> Select[Any]:
    """A ``Select`` of the ids of the tenant's customers matching a segment's customer criteria (age in whole
    years on ``today`` from the birthday; a list matches any of its values; ``custom`` conditions are checked
    against the tenant's active custom fields, errors named ``{custom_field}.{i}…``), in every ``include`` and
    in no ``exclude`` statement of ids. Not run, not audited: the caller counts or loads it."""
    conditions: list[ColumnElement[bool]] = []
    if age_min is not None:  # born on or before today minus age_min years
        conditions.append(Customer.birthday <= _years_before(today, age_min))
    if age_max is not None:  # younger than age_max + 1
        conditions.append(Customer.birthday > _years_before(today, age_max + 1))
    if genders:
        conditions.append(Customer.gender.in_(list(genders)))
    if prefectures:
        conditions.append(Customer.prefecture.in_(list(prefectures)))
    if cities:
        conditions.append(Customer.city.in_(list(cities)))
    if ranks:
        conditions.append(Customer.rank.in_([r.lower() for r in ranks]))
    if custom:
        defs = CustomFieldRepository(session, actor.tenant_id).by_key()
        masked = not actor.sees_personal_data
        for i, cond in enumerate(custom):
            field = f"{custom_field}.{i}"
            defn = defs.get(cond["key"])
            if defn is None or not defn.active:
                raise ValidationFailed(
                    "bad condition", errors=[field_error(f"{field}.key", f"unknown custom field '{cond['key']}'")]
                )
            if masked and defn.type in custom_fields.MASKED_TYPES:
                raise masked_field(f"{field}.key", f"{defn.key}: {defn.type} values are masked for your role")
            conditions.append(_custom_condition(defn, cond, field))
    return CustomerRepository(session, actor.tenant_id).segment_ids(conditions, include, exclude)


def outreach_rows(session: Session, actor: Actor, ids: Select[Any]) -> Select[Any]:
    """For the customers of ``ids`` (a statement of :func:`segment_ids`): ``customer_id``, ``e164`` — the number to
    call, the customer's primary number (else the oldest; null without any) — and ``block``: why the customer may
    not be called (``do_not_contact``, APPI suspension; ``outbound_excluded``) or null. A statement, not run here."""
    return CustomerRepository(session, actor.tenant_id).outreach_rows(ids)
