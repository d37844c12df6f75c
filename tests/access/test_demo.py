"""Demo mode: the key ``gateway serve`` prints is registered by the server process itself
(the embedded store lives there), idempotently, and replaces earlier demo keys."""

from __future__ import annotations

from access_routes import ROUTES
from cryptography.fernet import Fernet

from gateway.access.service import DEMO_RESELLER_ID
from gateway.access.tokens import new_token
from gateway.api.testing import serve_in_process
from gateway.app import create_app
from gateway.settings import AccessSettings, OrderSettings, Settings


def demo_settings(token: str) -> Settings:
    return Settings(
        redis_url=None,  # the embedded in-process store
        sandbox="off",
        access=AccessSettings(demo_key=token),
        orders=OrderSettings(encryption_keys=[Fernet.generate_key().decode()]),
    )


async def test_the_demo_key_works_in_the_embedded_store() -> None:
    _, token = new_token()
    app = create_app(demo_settings(token), extra_routes=ROUTES)
    async with serve_in_process(app) as client:
        response = await client.get("/v1/test/whoami", headers={"X-API-Key": token})
        assert response.status_code == 200, response.text
        assert response.json()["reseller_id"] == DEMO_RESELLER_ID
        for path in ("/v1/test/orders",):
            assert (await client.get(path, headers={"X-API-Key": token})).status_code == 200
            assert (await client.post(path, headers={"X-API-Key": token})).status_code == 201
        # Starting again (another worker, a restart) with the same key is harmless.
        access = app.state.access
        await access.start()
        assert (
            await client.get("/v1/test/whoami", headers={"X-API-Key": token})
        ).status_code == 200

        # A new demo key retires the previous one.
        _, newer = new_token()
        from gateway.access.service import register_demo

        await register_demo(access.store, newer)
        access.authenticator.forget()
        assert (
            await client.get("/v1/test/whoami", headers={"X-API-Key": newer})
        ).status_code == 200
        assert (
            await client.get("/v1/test/whoami", headers={"X-API-Key": token})
        ).status_code == 401
        keys = await access.store.list_keys(DEMO_RESELLER_ID)
        assert sorted(k.status for k in keys) == ["active", "revoked"]


async def test_without_a_demo_key_nothing_is_registered() -> None:
    settings = demo_settings(new_token()[1]).model_copy(update={"access": AccessSettings()})
    app = create_app(settings, extra_routes=ROUTES)
    async with serve_in_process(app):
        assert await app.state.access.store.list_resellers() == []
