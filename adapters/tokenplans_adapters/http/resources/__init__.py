"""The API's resources, one module each: its handlers, their rendering and their OpenAPI
fragments side by side, and a :class:`~tokenplans_adapters.http.routing.Resource` (``RESOURCE``)
that ``create_app`` assembles.

- :mod:`.meta`: the service itself (``/``, health, readiness) and the plan catalog;
- :mod:`.tokens`: the caller's own account (usage, set-plan, consume, ledger);
- :mod:`.admin`: any account, for admins (``/api/admin/accounts/{subject}/...``);
- :mod:`.holds`: holds on the caller's account and, for admins, on any account;
- :mod:`.documents`: ``/openapi.json`` and the Swagger UI at ``/docs``;
- :mod:`.payments`: orders, verification, webhooks and the caller's payments (only when
  a payment gateway is wired).

No rule lives in any of them: permissions, plan transitions and balances are the core's,
and core errors map to responses in :mod:`tokenplans_adapters.http.errors`. Storage is
synchronous, so every use case runs in a worker thread
(:func:`~tokenplans_adapters.http.offload.in_thread`) and the event loop stays free for
other requests.
"""
