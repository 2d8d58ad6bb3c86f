from __future__ import annotations

from sqlalchemy import Select, func, select

from kakehashi.ivr.models import IvrFlow, IvrFlowVersion
from kakehashi.kit.repository import TenantRepository
from kakehashi.routing.models import Queue


class IvrFlowRepository(TenantRepository):
    """Flows of one tenant and their versions (versions are reached through their tenant's flow only)."""

    def add(self, flow: IvrFlow) -> IvrFlow:
        flow.tenant_id = self.tenant_id
        self.session.add(flow)
        self.session.flush()
        return flow

    def get(self, flow_id: int, *, for_update: bool = False) -> IvrFlow | None:
        """``for_update``: lock the row so two saves cannot both take the next version number (PostgreSQL;
        SQLite has one writer at a time anyway)."""
        stmt = self.scoped(select(IvrFlow).where(IvrFlow.id == flow_id), IvrFlow)
        if for_update:
            stmt = stmt.with_for_update()
        return self.session.scalars(stmt).one_or_none()

    def by_name(self, name: str) -> IvrFlow | None:
        return self.session.scalars(self.scoped(select(IvrFlow).where(IvrFlow.name == name), IvrFlow)).one_or_none()

    def add_version(self, version: IvrFlowVersion) -> IvrFlowVersion:
        self.session.add(version)
        self.session.flush()
        return version

    def _versions(self, flow_id: int) -> Select[IvrFlowVersion]:
        return self.scoped(
            select(IvrFlowVersion).join(IvrFlow, IvrFlow.id == IvrFlowVersion.flow_id).where(IvrFlow.id == flow_id),
            IvrFlow,
        )

    def versions(self, flow_id: int, limit: int = 1000) -> list[IvrFlowVersion]:
        """Newest first."""
        stmt = self._versions(flow_id).order_by(IvrFlowVersion.version.desc()).limit(limit)
        return list(self.session.scalars(stmt))

    def version(self, flow_id: int, version: int) -> IvrFlowVersion | None:
        stmt = self._versions(flow_id).where(IvrFlowVersion.version == version)
        return self.session.scalars(stmt).one_or_none()

    def last_version(self, flow_id: int) -> int:
        stmt = select(func.max(IvrFlowVersion.version)).where(IvrFlowVersion.flow_id == flow_id)
        return self.session.scalar(stmt) or 0

    def queue_names(self) -> set[str]:
        """The tenant's queue names, to check the queues a flow names.

        Read straight from routing's ``queues`` table: validation needs only the names, and going through a
        routing service would make ``ivr`` import the ACD (and the ACD imports flows for its numbers).
        """
        return set(self.session.scalars(self.scoped(select(Queue.name), Queue)))

    def skill_names(self) -> set[str]:
        """The skills the tenant's skill queues take (an IVR ``set`` may name only these)."""
        stmt = self.scoped(select(Queue.skill).where(Queue.skill.is_not(None)), Queue).distinct()
        return {skill for skill in self.session.scalars(stmt) if skill}

    # Last: inside the class, ``list`` below this line is this method.
    def list(self, limit: int = 500) -> list[IvrFlow]:
        return list(self.session.scalars(self.scoped(select(IvrFlow), IvrFlow).order_by(IvrFlow.name).limit(limit)))
