"""Queries on agents, their skills, aux codes and state spans (tenant-scoped)."""

from __future__ import annotations

from sqlalchemy import select

from kakehashi.agents.models import Agent, AgentSkill, AgentStateSpan, AuxCode
from kakehashi.kit.repository import TenantRepository


class AgentRepository(TenantRepository):
    def get(self, agent_id: int) -> Agent | None:
        return self.session.scalars(self.scoped(select(Agent).where(Agent.id == agent_id), Agent)).one_or_none()

    def by_name(self, name: str) -> Agent | None:
        return self.session.scalars(self.scoped(select(Agent).where(Agent.name == name), Agent)).one_or_none()

    def all(self) -> list[Agent]:
        return list(self.session.scalars(self.scoped(select(Agent).order_by(Agent.name), Agent)))

    def skills(self, agent_id: int) -> list[AgentSkill]:
        stmt = select(AgentSkill).where(AgentSkill.agent_id == agent_id).order_by(AgentSkill.skill)
        return list(self.session.scalars(stmt))

    def skills_by_agent(self) -> dict[int, dict[str, int]]:
        """Every agent's skills in one query: agent id → {skill: level}."""
        stmt = self.scoped(select(AgentSkill).join(Agent, Agent.id == AgentSkill.agent_id), Agent)
        found: dict[int, dict[str, int]] = {}
        for row in self.session.scalars(stmt):
            found.setdefault(row.agent_id, {})[row.skill] = row.level
        return found

    def with_skill(self, skill: str) -> list[tuple[str, int]]:
        """(agent name, level) of the tenant's agents who have ``skill``."""
        stmt = self.scoped(
            select(Agent.name, AgentSkill.level).join(AgentSkill, AgentSkill.agent_id == Agent.id)
            .where(AgentSkill.skill == skill),
            Agent,
        )  # fmt: skip
        return [(name, level) for name, level in self.session.execute(stmt)]

    def open_span(self, agent_id: int) -> AgentStateSpan | None:
        stmt = select(AgentStateSpan).where(AgentStateSpan.agent_id == agent_id, AgentStateSpan.ended_at.is_(None))
        return self.session.scalars(stmt.order_by(AgentStateSpan.started_at.desc()).limit(1)).first()

    def spans(self, agent_id: int, limit: int) -> list[AgentStateSpan]:
        stmt = select(AgentStateSpan).where(AgentStateSpan.agent_id == agent_id)
        return list(self.session.scalars(stmt.order_by(AgentStateSpan.started_at.desc()).limit(limit)))

    def aux_codes(self) -> list[AuxCode]:
        return list(self.session.scalars(self.scoped(select(AuxCode).order_by(AuxCode.code), AuxCode)))
