"""IVR flows per tenant, versioned: every save is a new version and the current one answers calls.

Versions are never edited or deleted. Saving (a new definition, or a rollback to an old version's) always
validates against the tenant's queues *now* — an old version naming a queue deleted since cannot come back
unchanged. The runner asks :func:`live_flow` for the flow a number points at.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from kakehashi.audit import service as audit
from kakehashi.ivr.flow import (
    Branch,
    CallbackOffer,
    Collect,
    Flow,
    Hours,
    Menu,
    Node,
    Notice,
    SetRoute,
    ToQueue,
    Transfer,
    VoicemailNode,
)
from kakehashi.ivr.models import IvrFlow, IvrFlowVersion
from kakehashi.ivr.problems import problem
from kakehashi.ivr.repository import IvrFlowRepository
from kakehashi.ivr.schemas import FlowCreate, RestoreIn, VersionCreate
from kakehashi.ivr.validate import EXIT_TYPES, links, problems, validate_flow
from kakehashi.kit.context import Actor
from kakehashi.kit.db import utcnow
from kakehashi.kit.errors import Conflict, NotFound, ValidationFailed

#: Flow names are what numbers point at (``inbound_numbers.flow``) and what the CLI takes: plain ids.
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,59}$")


@dataclass(frozen=True, slots=True)
class Saved:
    """A flow and one of its versions (after a save: the new, current one)."""

    flow: IvrFlow
    version: IvrFlowVersion


def _repo(session: Session, actor: Actor) -> IvrFlowRepository:
    return IvrFlowRepository(session, actor.tenant_id)


def check(session: Session, actor: Actor, definition: Any) -> Flow:
    """The parsed flow, or ``ValidationFailed`` with every problem (checked against the tenant's queues)."""
    repo = _repo(session, actor)
    return validate_flow(definition, known_queues=repo.queue_names(), known_skills=repo.skill_names())


def stored(flow: Flow) -> dict[str, Any]:
    """What is saved: the flow as written (fields left out stay out, so defaults can improve), normalized
    (dates and tuples as JSON, a branch's other way as ``else``)."""
    return flow.model_dump(mode="json", by_alias=True, exclude_unset=True)


def _name_errors(name: str) -> list[dict[str, Any]]:
    if not NAME.match(name):
        return [problem("name", "flow_name")]
    return []


def create_flow(session: Session, actor: Actor, data: FlowCreate) -> Saved:
    """A new flow with its first version (409 when the name is taken in the tenant)."""
    repo = _repo(session, actor)
    name = data.name.strip()
    errors = _name_errors(name) + problems(
        data.definition, known_queues=repo.queue_names(), known_skills=repo.skill_names()
    )
    if errors:
        raise ValidationFailed(f"{len(errors)} problem(s)", errors=errors)
    parsed = Flow.model_validate(data.definition)
    if repo.by_name(name) is not None:
        raise Conflict(f"a flow named '{name}' already exists", errors=[problem("name", "name_taken")])
    flow = repo.add(IvrFlow(name=name, current_version=1))
    version = repo.add_version(
        IvrFlowVersion(
            flow_id=flow.id,
            version=1,
            definition=stored(parsed),
            comment=data.comment.strip(),
            created_by=actor.username[:60],
            created_at=utcnow(),
        )
    )
    audit.record(
        session,
        actor,
        "create",
        resource="ivr_flow",
        resource_id=flow.id,
        detail={"name": name, "version": 1, "nodes": len(parsed.nodes)},
    )
    return Saved(flow, version)


def _add_version(
    session: Session,
    actor: Actor,
    flow: IvrFlow,
    parsed: Flow,
    comment: str,
    *,
    restored_from: int | None = None,
) -> Saved:
    repo = _repo(session, actor)
    number = repo.last_version(flow.id) + 1
    version = repo.add_version(
        IvrFlowVersion(
            flow_id=flow.id,
            version=number,
            definition=stored(parsed),
            comment=comment.strip(),
            created_by=actor.username[:60],
            created_at=utcnow(),
        )
    )
    flow.current_version = number
    session.flush()
    detail: dict[str, Any] = {"name": flow.name, "version": number, "nodes": len(parsed.nodes)}
    if restored_from is not None:
        detail["restored_from"] = restored_from
    audit.record(session, actor, "update", resource="ivr_flow", resource_id=flow.id, detail=detail)
    return Saved(flow, version)


def save_version(session: Session, actor: Actor, flow_id: int, data: VersionCreate) -> Saved:
    """A new version from ``data.definition``; it becomes current. 409 when ``base_version`` is given and
    someone saved a newer version since (their change would be lost without a look)."""
    flow = _flow(session, actor, flow_id, for_update=True)
    if data.base_version is not None and data.base_version != flow.current_version:
        raise Conflict(
            f"version {flow.current_version} was saved after version {data.base_version}, which this edit started"
            " from: look at it first",
            errors=[problem("", "version_conflict", saved=flow.current_version, base=data.base_version)],
            current_version=flow.current_version,
        )
    parsed = check(session, actor, data.definition)
    return _add_version(session, actor, flow, parsed, data.comment)


def restore(session: Session, actor: Actor, flow_id: int, version: int, data: RestoreIn | None = None) -> Saved:
    """Roll back: an old version's definition saved again as a new version (validated like any save)."""
    flow = _flow(session, actor, flow_id, for_update=True)
    old = get_version(session, actor, flow_id, version)
    try:
        parsed = check(session, actor, old.definition)
    except ValidationFailed as exc:
        raise ValidationFailed(
            f"version {version} cannot be restored as it is: {exc.detail}", errors=exc.errors
        ) from None
    comment = (data.comment.strip() if data else "") or f"restore of version {version}"
    return _add_version(session, actor, flow, parsed, comment, restored_from=version)


def _flow(session: Session, actor: Actor, flow_id: int, *, for_update: bool = False) -> IvrFlow:
    """The tenant's flow; another tenant's id is 404 like an id that does not exist."""
    flow = _repo(session, actor).get(flow_id, for_update=for_update)
    if flow is None:
        raise NotFound(f"IVR flow {flow_id} not found")
    return flow


def get_flow(session: Session, actor: Actor, flow_id: int) -> Saved:
    """The flow with its current version."""
    flow = _flow(session, actor, flow_id)
    return Saved(flow, get_version(session, actor, flow_id, flow.current_version))


def list_flows(session: Session, actor: Actor) -> list[IvrFlow]:
    return _repo(session, actor).list()


def list_versions(session: Session, actor: Actor, flow_id: int) -> list[IvrFlowVersion]:
    """Newest first."""
    _flow(session, actor, flow_id)
    return _repo(session, actor).versions(flow_id)


def get_version(session: Session, actor: Actor, flow_id: int, version: int) -> IvrFlowVersion:
    found = _repo(session, actor).version(flow_id, version)
    if found is None:
        _flow(session, actor, flow_id)  # 404 for the flow first when it is not the tenant's
        raise NotFound(f"IVR flow {flow_id} has no version {version}")
    return found


def live_version(session: Session, tenant_id: int, name: str) -> tuple[int, Flow] | None:
    """The current version's number and flow of the tenant's flow ``name``; None when there is no such flow."""
    repo = IvrFlowRepository(session, tenant_id)
    flow = repo.by_name(name)
    if flow is None:
        return None
    row = repo.version(flow.id, flow.current_version)
    if row is None:  # not possible through this service: every flow is created with its version 1
        return None
    return row.version, Flow.model_validate(row.definition)


def live_flow(session: Session, tenant_id: int, name: str) -> Flow | None:
    """For the runner: the flow that answers calls for ``name`` now (its current version), or None.

    It was valid when saved; queues deleted since are the runner's to handle (e.g. a queue's overflow).
    """
    found = live_version(session, tenant_id, name)
    return found[1] if found else None


def pretty_json(value: Any, indent: int = 0) -> str:
    """JSON for people: indented, but anything short on one line (``["09:00", "18:00"]``, ``{"type": "hangup"}``)."""
    flat = json.dumps(value, ensure_ascii=False)
    if len(flat) + indent <= _ONE_LINE or not isinstance(value, dict | list) or not value:
        return flat
    inner = " " * (indent + 2)
    if isinstance(value, dict):
        items = [f"{inner}{json.dumps(k, ensure_ascii=False)}: {pretty_json(v, indent + 2)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"
    return "[\n" + ",\n".join(f"{inner}{pretty_json(v, indent + 2)}" for v in value) + "\n" + " " * indent + "]"


_ONE_LINE = 80


# --- a readable outline for the page ------------------------------------------------------------------------

#: Node types as the page names them (Japanese; ``web.i18n`` has the English).
TYPE_LABELS = {
    "play": "音声再生",
    "notice": "録音告知",
    "menu": "メニュー",
    "collect": "番号入力",
    "hours": "営業時間判定",
    "branch": "発信者で分岐",
    "set": "振り分け設定",
    "queue": "キューへ接続",
    "transfer": "転送",
    "voicemail": "留守番電話",
    "callback_offer": "コールバック案内",
    "hangup": "終話",
}
_LINK_LABELS = {
    "next": "次へ",
    "on_fail": "失敗時",
    "open": "営業中",
    "closed": "時間外",
    "then": "該当",
    "else": "非該当",
    "decline": "辞退時",
}

_DAY_LABELS = {"mon": "月曜", "tue": "火曜", "wed": "水曜", "thu": "木曜", "fri": "金曜", "sat": "土曜", "sun": "日曜"}


@dataclass(frozen=True, slots=True)
class Fact:
    """One line of a node's settings; ``label`` (and ``value`` when ``translate``) go through ``t()``."""

    label: str
    value: str
    translate: bool = False


@dataclass(frozen=True, slots=True)
class OutlineRow:
    id: str
    type: str
    label: str
    prompt: str | None
    facts: list[Fact] = field(default_factory=list)
    #: (label for ``t()``, key pressed or "", target node id)
    links: list[tuple[str, str, str]] = field(default_factory=list)
    start: bool = False
    exit: bool = False


def outline(flow: Flow) -> list[OutlineRow]:
    """Each node in the order written: its type, prompt, settings and where it goes."""
    rows = []
    for node_id, node in flow.nodes.items():
        out = []
        for name, target, _waits in links(node):
            if name.startswith("options."):
                out.append(("キー", name.removeprefix("options."), target))
            else:
                out.append((_LINK_LABELS[name], "", target))
        rows.append(
            OutlineRow(
                id=node_id,
                type=node.type,
                label=TYPE_LABELS[node.type],
                prompt=getattr(node, "prompt", None),
                facts=_facts(node),
                links=out,
                start=node_id == flow.start,
                exit=node.type in EXIT_TYPES,
            )
        )
    return rows


def _yes(value: bool) -> Fact:
    return Fact("", "はい" if value else "いいえ", translate=True)


def _facts(node: Node) -> list[Fact]:
    facts: list[Fact] = []
    queue = getattr(node, "queue", None)
    match node:
        case Notice():
            facts.append(Fact("録音", "録音開始" if node.record else "録音しない", translate=True))
        case Menu():
            facts.append(Fact("再入力", f"{node.retries} / {node.timeout_s:g} s"))
        case Collect():
            facts += [Fact("変数", node.var), Fact("桁数", f"{node.min_digits}–{node.max_digits}")]
            if node.sensitive:
                facts.append(Fact("機密（録音停止・マスク）", "はい", translate=True))
        case Hours():
            schedule = node.schedule
            for day, ranges in schedule.weekly.items():
                facts.append(Fact(_DAY_LABELS[day], ", ".join(f"{a}–{b}" for a, b in ranges) or "—"))
            facts.append(Fact("祝日", "休業" if schedule.closed_on_holidays else "営業", translate=True))
            if schedule.closed_dates:
                facts.append(Fact("休業日", ", ".join(d.isoformat() for d in schedule.closed_dates)))
            if schedule.open_dates:
                facts.append(Fact("特別営業日", ", ".join(d.isoformat() for d in schedule.open_dates)))
        case Branch():
            when = node.when
            if when.known is not None:
                facts.append(Fact("登録済みの顧客", _yes(when.known).value, translate=True))
            if when.rank_in is not None:
                facts.append(Fact("ランク", ", ".join(when.rank_in)))
            if when.open_complaint is not None:
                facts.append(Fact("未解決のクレームあり", _yes(when.open_complaint).value, translate=True))
            if when.var is not None:
                facts.append(Fact("変数", f"{when.var} = {when.equals}"))
        case SetRoute():
            if node.priority is not None:
                facts.append(Fact("優先度", str(node.priority)))
            if node.skill is not None:
                facts.append(Fact("スキル", node.skill))
        case ToQueue():
            if node.priority is not None:
                facts.append(Fact("優先度", str(node.priority)))
            if queue is None:
                facts.append(Fact("キュー", "振り分け設定のキュー", translate=True))
        case Transfer():
            facts.append(Fact("転送先", node.target))
        case CallbackOffer():
            facts.append(Fact("受付キー", node.accept))
        case VoicemailNode() if queue is None:
            facts.append(Fact("キュー", "共通", translate=True))
        case _:
            pass
    if queue is not None:
        facts.insert(0, Fact("キュー", queue))
    return facts
