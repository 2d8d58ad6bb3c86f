"""The demo wing: everything that makes a demo or a load test, none of which the product needs to run.

``synthetic`` (reproducible realistic people), ``seed`` (customers with orders, complaints and contacts in bulk),
``customers`` (the showcase customers), ``routing`` (the demo's agents, queues, IVR flow and numbers), ``users``
(one login per role) and ``traffic`` (simulated customers and agents while ``kakehashi demo`` serves the app; the
app imports it only when ``KAKEHASHI_DEMO_TRAFFIC_PER_HOUR`` > 0). The domains never import this package."""
