"""SMS end to end over SMPP: a long Cyrillic text goes out in parts to the fake SMSC, and the
delivery receipt it pushes back over the same connection marks the message delivered."""

from __future__ import annotations

import time

import httpx

from tests.conftest import LiveServer, Tenant
from tests.delivery.support import api, ok, person, send_message, set_up, settled, template
from tests.support.fake_smsc import FakeSmsc

TEXT = (
    "Здравствуйте, {{ profile.traits.first_name }}! "
    + "Ваш заказ собран и ждёт вас в пункте выдачи. " * 2
)


def test_a_long_cyrillic_sms_is_sent_in_parts_and_its_receipt_marks_it_delivered(
    live: LiveServer, http: httpx.Client, tenant: Tenant
) -> None:
    with FakeSmsc() as smsc:
        set_up(
            http,
            tenant,
            channel="sms",
            provider="smpp",
            config={
                "host": smsc.host,
                "port": smsc.port,
                "system_id": "otklik",
                "password": "secret",
                "source_addr": "Shop",
            },
        )
        key = template(http, tenant, channel="sms", purpose="transactional", content={"text": TEXT})
        pid = person(
            live, http, tenant, consent=False, first_name="Ольга", phone="8 (912) 345-67-01"
        )
        msg = settled(
            http,
            tenant,
            ok(send_message(http, tenant, template=key, to={"profile_id": pid}), 202)["id"],
        )
        assert msg["state"] == "sent", msg
        assert msg["address"] == "+79123456701"
        assert smsc.wait_for(lambda s: len(s.messages) == 1)
        [sms] = smsc.messages
        assert sms.text.startswith("Здравствуйте, Ольга! Ваш заказ")
        assert len(smsc.submits) == 2  # 116 UCS-2 characters: two parts of at most 67
        deadline = time.monotonic() + 15
        while True:
            found = ok(api(http, tenant, "GET", f"/messages/{msg['id']}"))
            if found["state"] == "delivered":
                break
            assert time.monotonic() < deadline, found
            time.sleep(0.1)
        assert [e["kind"] for e in found["events"]] == ["delivered"]
