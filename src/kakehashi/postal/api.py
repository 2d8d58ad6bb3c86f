from __future__ import annotations

from fastapi import APIRouter

from kakehashi.auth.guard import StaffActor
from kakehashi.postal import service
from kakehashi.postal.service import PostalResult

router = APIRouter(prefix="/api/v1", tags=["postal codes"])


@router.get("/postal/{code}", response_model=PostalResult)
def postal_lookup(code: str, _: StaffActor) -> PostalResult:
    """Prefecture / city / town candidates for a postal code (hyphen and full-width accepted)."""
    return service.lookup(code)
