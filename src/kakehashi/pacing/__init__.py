"""Pacing of predictive dialing (issue 19): how many calls a campaign places now. Pure: counts and times in,
a number of calls out; no database, no telephony (the dialer wires it: ``kakehashi.dialer``).

- ``types``: what a pacer is told every second (:class:`PacingState`) and after every call (:class:`DialOutcome`).
- ``adapt``: VICIdial's ADAPT modes as its source does them (the benchmark's baseline).
- ``predictive``: ours — the number of calls whose expected abandons stay within the campaign's budget.
"""
