"""The tenant's result codes: the list agents choose from at wrap-up, and the check of a choice.

A tenant that has not set its own list gets ``DEFAULTS``. Setting the list replaces it as a whole (its order
is the drop-down's); codes left out are retired, not deleted, since calls keep their text. ``SYSTEM_CODES``
are written by the system only (``AUTO_CLOSE``).
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from kakehashi.dispositions.models import Disposition
from kakehashi.dispositions.repository import DispositionRepository
from kakehashi.dispositions.schemas import DispositionIn, DispositionOut
from kakehashi.kit.context import Actor
from kakehashi.kit.errors import ValidationFailed, field_error

DEFAULTS: tuple[DispositionIn, ...] = tuple(
    DispositionIn(code=code, label_en=label, kind=kind)
    for code, label, kind in (
        ("受注", "Order taken", "sale"),
        ("問い合わせ対応", "Inquiry answered", "contact"),
        ("折り返し予定", "Call back later", "callback"),
        ("解約受付", "Cancellation", "contact"),
        ("クレーム対応", "Complaint handled", "contact"),
        ("間違い電話", "Wrong number", "no_contact"),
        ("その他", "Other", "other"),
    )
)
#: The code the system writes when the queue's wrap-up time runs out before the agent closed the call. It is
#: never offered to agents (not in :data:`DEFAULTS`, refused by :func:`check_choice`), so reports can tell an
#: agent's result from a time-out.
AUTO_CLOSE = DispositionIn(code="自動完了", label_en="Closed automatically (wrap-up time ran out)", kind="other")
#: Every code only the system writes.
SYSTEM_CODES: tuple[DispositionIn, ...] = (AUTO_CLOSE,)


def list_dispositions(session: Session, actor: Actor, *, retired: bool = False) -> list[DispositionOut]:
    """The codes agents choose from, in order (with ``retired``: the retired ones after them)."""
    rows = DispositionRepository(session, actor.tenant_id).all()
    if not rows:
        return [DispositionOut(**d.model_dump(), position=i, active=True, builtin=True) for i, d in enumerate(DEFAULTS)]
    return [DispositionOut.model_validate(row) for row in rows if row.active or retired]


def replace_dispositions(session: Session, actor: Actor, items: list[DispositionIn]) -> list[DispositionOut]:
    """Make ``items`` the tenant's list, in that order; codes not in it are retired. All or nothing."""
    seen: dict[str, int] = {}
    errors = []
    for i, item in enumerate(items):
        if item.code in seen:
            errors.append(field_error(f"dispositions.{i}.code", f"{item.code} is already item {seen[item.code]}"))
        seen.setdefault(item.code, i)
    if errors:
        raise ValidationFailed("the list names a result code twice", errors=errors)
    existing = {row.code: row for row in DispositionRepository(session, actor.tenant_id).all()}
    for position, item in enumerate(items):
        row = existing.get(item.code)
        if row is None:
            row = Disposition(tenant_id=actor.tenant_id, code=item.code)
            session.add(row)
        row.label_en, row.kind, row.position, row.active = item.label_en, item.kind, position, True
    for code, row in existing.items():
        if code not in seen:
            row.active = False
    session.flush()
    return list_dispositions(session, actor)


def check_choice(session: Session, actor: Actor, code: str) -> str:
    """The code as stored, if the agent may close a call with it (one of the tenant's active codes)."""
    chosen = code.strip()
    system = {d.code for d in SYSTEM_CODES}
    if chosen in system or chosen not in {d.code for d in list_dispositions(session, actor)}:
        raise ValidationFailed(
            "not one of this center's result codes",
            errors=[field_error("disposition", f"{chosen} is not a result code here (GET /api/v1/dispositions)")],
        )
    return chosen


def active_codes(session: Session, actor: Actor) -> set[str]:
    """The codes agents may choose now (the system's own excluded)."""
    return {d.code for d in list_dispositions(session, actor)} - {d.code for d in SYSTEM_CODES}
