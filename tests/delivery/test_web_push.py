"""Web push end to end: the site registers a browser's subscription with the write key, a
message is encrypted for that browser (the fake push service decrypts it), and a
subscription the browser dropped (410) is removed so it is not tried again."""

from __future__ import annotations

import httpx

from otklik.channels.webpush import generate_vapid_keys
from tests.conftest import LiveServer, Tenant
from tests.delivery.support import ok, person, send_message, set_up, settled, template
from tests.profiles.support import send
from tests.support.fake_push import FakeWebPushService


def vapid() -> dict[str, str]:
    private, public = generate_vapid_keys()
    return {
        "vapid_private_key": private,
        "vapid_public_key": public,
        "vapid_subject": "mailto:ops@shop.example",
    }


def test_a_registered_browser_gets_an_encrypted_push_with_a_tracked_link(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    keys = vapid()
    with FakeWebPushService() as service:
        set_up(http, tenant, channel="webpush", provider="vapid", config=keys)
        key = template(
            http,
            tenant,
            channel="webpush",
            purpose="transactional",
            content={
                "title": "Заказ {{ data.order }}",
                "text": "Передан в доставку",
                "url": "https://shop.example/o/{{ data.order }}",
            },
        )
        pid = person(live, http, tenant, consent=False)
        user = ok(http.get(f"/api/v1/profiles/{pid}", headers=tenant.bearer))["identities"]
        user_id = next(i["value"] for i in user if i["type"] == "user_id")
        config = http.get("/v1/push/config", params={"writeKey": tenant.write_key})
        assert ok(config)["vapid_public_key"] == keys["vapid_public_key"]
        browser = service.subscribe(keys["vapid_public_key"])
        r = http.post(
            "/v1/push/subscriptions",
            json={
                "writeKey": tenant.write_key,
                "subscription": browser.subscription(),
                "userId": user_id,
            },
        )
        assert ok(r, 201) == {"profile_id": pid, "created": True}
        again = http.post(
            "/v1/push/subscriptions",
            json={
                "writeKey": tenant.write_key,
                "subscription": browser.subscription(),
                "userId": user_id,
            },
        )
        assert ok(again, 201)["created"] is False
        msg = settled(
            http,
            tenant,
            ok(
                send_message(
                    http, tenant, template=key, to={"profile_id": pid}, data={"order": "A-7"}
                ),
                202,
            )["id"],
        )
        assert msg["state"] == "sent", msg
        [payload] = service.delivered()
        assert payload["title"] == "Заказ A-7" and payload["body"] == "Передан в доставку"
        assert "/t/c/" in payload["url"]  # a click on the notification is tracked
        service.expire(browser)
        gone = settled(
            http,
            tenant,
            ok(
                send_message(
                    http, tenant, template=key, to={"profile_id": pid}, data={"order": "A-8"}
                ),
                202,
            )["id"],
        )
        assert (gone["state"], gone["reason_code"]) == ("failed", "subscription_gone")
        third = settled(
            http,
            tenant,
            ok(
                send_message(
                    http, tenant, template=key, to={"profile_id": pid}, data={"order": "A-9"}
                ),
                202,
            )["id"],
        )
        assert (third["state"], third["reason_code"]) == ("skipped", "no_address")


def test_subscriptions_need_a_known_visitor_and_a_valid_subscription(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    send(http, tenant, {"type": "page", "anonymousId": "anon-push-1", "name": "Home"})
    live.drain()
    good = {"endpoint": "https://push.example/abc", "keys": {"p256dh": "x", "auth": "y"}}
    r = http.post(
        "/v1/push/subscriptions",
        json={"writeKey": tenant.write_key, "subscription": good, "anonymousId": "anon-push-1"},
    )
    assert r.status_code == 422 and r.json()["code"].startswith("invalid")
    r = http.post(
        "/v1/push/subscriptions",
        json={"writeKey": tenant.write_key, "subscription": good, "anonymousId": "never-seen"},
    )
    assert (r.status_code, r.json()["code"]) == (404, "profile_not_found")
    r = http.post(
        "/v1/push/subscriptions",
        json={"writeKey": "wk_wrong", "subscription": good, "anonymousId": "anon-push-1"},
    )
    assert r.status_code == 401
    r = http.post(
        "/v1/push/devices",
        json={
            "writeKey": tenant.write_key,
            "token": "abc",
            "platform": "blackberry",
            "anonymousId": "anon-push-1",
        },
    )
    assert r.status_code == 422
    assert (
        http.get("/v1/push/config", params={"writeKey": tenant.write_key}).json()["code"]
        == "webpush_not_configured"
    )
