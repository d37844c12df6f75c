"""Orders: idempotent creation, routing to suppliers, durable placement and fulfilment
in workers, encrypted codes, signed webhooks. Start with ``service.py`` (taking an
order), ``processing.py`` (what workers do) and ``models.py`` (the states)."""
