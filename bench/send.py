"""bench/send: personalised MJML emails, and SMS over SMPP, through the whole pipeline.

    python bench/send.py [--messages 3000] [--pool 32] [--workers 4] [--batch 100]
                         [--sms 2000] [--sms-naive 100] [--no-email]

The sink (tests/support/fast_smtp_sink.py, which offers PIPELINING as Postfix does) runs in
its own process, as a real relay would. Stages, each measured on its own, then together:
  render     template render + link rewriting + open pixel per message (one core)
  smtp       pooled SMTP sends of ready messages (--pool connections), pipelined;
             smtp_lockstep: the same against a sink that does not offer PIPELINING
  pipeline   end to end: claim, consent/suppression/policy checks, render, send, record,
             from --workers threads over batches of --batch, like the huey consumer
Baseline in the same run: the naive way (MJML converted per message and one SMTP
connection per message, as simple senders do) on a sample, and our ratio to it.

Then SMS (--sms messages; 0 leaves them out): a Russian shop's order texts, mostly Cyrillic
(UCS-2), a third long enough for three concatenated parts, a tenth Latin codes (GSM-7). The
fake SMSC (tests/support/fake_smsc.py) runs in its own process too.
  sms_render    the SMS template rendered per message (one core; SMS links are not rewritten)
  smpp          ready texts through SmppSmsAdapter: one bind, as many in flight as the
                sender allows a provider (MAX_IN_FLIGHT)
  sms_pipeline  end to end like `pipeline`, with an smpp channel at the fake SMSC
  sms_naive     a bind per message, one at a time (the baseline of smpp and sms_pipeline)
  smsc          exactly once: every message reassembled once, each part submitted once
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import emit, store

BENCH = "send"


def start_sink(*options: str) -> tuple[subprocess.Popen[str], int]:
    return start_peer("tests.support.fast_smtp_sink", *options)


def start_peer(module: str, *options: str) -> tuple[subprocess.Popen[str], int]:
    """A fake peer in its own process (its GIL share is not the sender's); it prints its port."""
    proc = subprocess.Popen(
        [sys.executable, "-m", module, *options],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(Path(__file__).resolve().parent.parent),
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def stop_sink(proc: subprocess.Popen[str]) -> str:
    out, _ = proc.communicate(timeout=30)
    return out.strip()


def audience(
    engine: Any, prefix: str, channel: str, people: list[dict[str, Any]]
) -> tuple[Any, list[dict[str, Any]]]:
    """A new workspace (quiet hours off) with these people, each consenting to `channel`."""
    from otklik.delivery import repository as repo
    from otklik.kit.db import session_scope, write_tx
    from otklik.kit.time import utc_now
    from otklik.models import Consent, Profile
    from otklik.workspaces import service as workspaces

    with session_scope(engine) as session:
        ws, _, _ = workspaces.create_workspace(
            session, name="bench", slug=f"{prefix}-{uuid.uuid4().hex[:6]}"
        )
    now = utc_now()
    profiles = [
        {"id": uuid.uuid4(), "workspace_id": ws.id, "created_at": now, "updated_at": now, **p}
        for p in people
    ]
    consents = [
        {"id": uuid.uuid4(), "workspace_id": ws.id, "profile_id": p["id"], "channel": channel,
         "purpose": "marketing", "topic": "", "status": "granted", "source": "bench",
         "updated_at": now}
        for p in profiles
    ]  # fmt: skip
    with write_tx(engine) as conn:
        repo.save_delivery_settings(conn, ws.id, {"quiet_hours": {"enabled": False}})
        conn.execute(Profile.__table__.insert(), profiles)
        conn.execute(Consent.__table__.insert(), consents)
    return ws, profiles


def seed(engine: Any, count: int, port: int, pool: int) -> tuple[uuid.UUID, list[Any]]:
    from tests.templates.test_email import newsletter_context, newsletter_mjml

    from otklik.channels import service as channels
    from otklik.delivery.service import SendIntent, queue_many
    from otklik.kit.db import write_tx
    from otklik.templates import service as templates

    people = [
        {"traits": {"first_name": f"Имя{n}", "loyalty_points": n % 30},
         "email": f"user{n}@example.com"}
        for n in range(count)
    ]  # fmt: skip
    ws, profiles = audience(engine, "b", "email", people)
    with write_tx(engine) as conn:
        channels.create(
            conn,
            ws.id,
            kind="email",
            provider="smtp",
            name="sink",
            config={
                "host": "127.0.0.1",
                "port": port,
                "security": "none",
                "from_address": "shop@example.com",
                "from_name": "Магазин",
                "pool_size": pool,
                "max_messages_per_connection": 100000,
                "rate_per_second": 100000,
            },
            is_default=True,
            enabled=True,
        )
        templates.create(
            conn,
            ws.id,
            templates.TemplateIn(
                key="newsletter",
                name="Newsletter",
                channel="email",
                purpose="marketing",
                topic="",
                content={
                    "subject": "{{ profile.traits.first_name }}, новинки недели",
                    "body": newsletter_mjml(),
                    "body_format": "mjml",
                },
            ),
            author="bench",
        )
        queued = queue_many(
            conn,
            ws.id,
            [
                SendIntent(
                    template="newsletter",
                    profile_id=p["id"],
                    event=newsletter_context(n)["event"],
                    source="campaign",
                )
                for n, p in enumerate(profiles)
            ],
        )
    return ws.id, [q.id for q in queued]


def bench_render(count: int) -> float:
    from tests.templates.test_email import newsletter_context, newsletter_mjml

    from otklik.delivery.links import Links
    from otklik.kit.signing import Signer
    from otklik.templates.content import compile_content
    from otklik.templates.email import add_open_pixel, rewrite_links

    compiled = compile_content(
        "email",
        {
            "subject": "{{ profile.traits.first_name }}",
            "body": newsletter_mjml(),
            "body_format": "mjml",
        },
    )
    links = Links(Signer("bench"), "https://t.example")
    started = time.perf_counter()
    for n in range(count):
        mid = uuid.uuid4()
        out = compiled.render(newsletter_context(n))
        assert out.html is not None
        add_open_pixel(
            rewrite_links(out.html, lambda u, m=mid: links.click(m, u)), links.open_pixel(mid)
        )
    return count / (time.perf_counter() - started)


def bench_smtp(count: int, port: int, pool: int) -> float:
    from otklik.channels.base import ChannelKind, OutboundMessage, Sent
    from otklik.channels.smtp import SmtpConfig, SmtpEmailAdapter

    adapter = SmtpEmailAdapter(
        SmtpConfig(
            host="127.0.0.1",
            port=port,
            security="none",
            from_address="shop@example.com",
            pool_size=pool,
            max_messages_per_connection=100000,
        )
    )
    html = "<p>" + "Привет! " * 2000 + "</p>"

    async def run() -> float:
        sem = asyncio.Semaphore(pool * 2)

        async def one(n: int) -> None:
            async with sem:
                result = await adapter.send(
                    OutboundMessage(
                        uuid.uuid4(),
                        ChannelKind.EMAIL,
                        f"u{n}@example.com",
                        "text",
                        "Subject",
                        html,
                    )
                )
                assert isinstance(result, Sent), result

        started = time.perf_counter()
        await asyncio.gather(*(one(n) for n in range(count)))
        rate = count / (time.perf_counter() - started)
        await adapter.aclose()
        return rate

    return asyncio.run(run())


def bench_naive(count: int, port: int) -> float:
    """MJML converted per message and a new SMTP connection per message."""
    import smtplib
    from email.message import EmailMessage

    from mjml import mjml2html
    from tests.templates.test_email import newsletter_context, newsletter_mjml

    from otklik.templates.rendering import environment

    source = newsletter_mjml()
    started = time.perf_counter()
    for n in range(count):
        html = mjml2html(environment(True).from_string(source).render(**newsletter_context(n)))
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "shop@example.com", f"u{n}@example.com", "Hi"
        msg.set_content("text")
        msg.add_alternative(html, subtype="html")
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            smtp.send_message(msg)
    return count / (time.perf_counter() - started)


def bench_pipeline(
    db_url: str, count: int, port: int, pool: int, workers: int, batch: int
) -> tuple[float, dict[str, int]]:
    return run_pipeline(db_url, lambda engine: seed(engine, count, port, pool)[1], workers, batch)


def run_pipeline(
    db_url: str, seeded: Any, workers: int, batch: int
) -> tuple[float, dict[str, int]]:
    """The delivery pipeline over the messages `seeded(engine)` queues, in batches of `batch`
    from `workers` threads, as the queue consumer runs it; messages/s and the outcomes."""
    from otklik.delivery.links import Links
    from otklik.delivery.pipeline import Outcomes, Pipeline
    from otklik.delivery.sender import Sender
    from otklik.kit.db import make_engine
    from otklik.kit.migrate import upgrade
    from otklik.kit.signing import Signer

    engine = make_engine(db_url, synchronous="NORMAL")
    upgrade(engine)
    ids = seeded(engine)
    sender = Sender()
    sender.start()
    pipeline = Pipeline(
        engine, sender, Links(Signer("bench"), "https://t.example"), lease=timedelta(minutes=5)
    )
    batches = [ids[i : i + batch] for i in range(0, len(ids), batch)]
    total = Outcomes()
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool_exec:
        for outcome in pool_exec.map(pipeline.process, batches):
            total.add(outcome)
    rate = len(ids) / (time.perf_counter() - started)
    sender.stop()
    engine.dispose()
    return rate, vars(total)


def bench_workers(
    db_url: str,
    count: int,
    port: int,
    pool: int,
    processes: int,
    batch: int,
    tmp: Path,
    threads: int = 1,
) -> tuple[float, int]:
    """Scale-out as deployed: `otklik worker` processes consuming the huey queue."""
    import os

    from sqlalchemy import func, select

    from otklik.config import Settings
    from otklik.delivery.runtime import DeliveryRuntime
    from otklik.kit.db import make_engine
    from otklik.kit.migrate import upgrade
    from otklik.models import Message

    engine = make_engine(db_url, synchronous="NORMAL")
    upgrade(engine)
    _, ids = seed(engine, count, port, pool)
    env = {
        **os.environ,
        "OTKLIK_DATABASE_URL": db_url,
        "OTKLIK_SQLITE_SYNCHRONOUS": "NORMAL",
        "OTKLIK_QUEUE_BACKEND": "sqlite",
        "OTKLIK_QUEUE_PATH": str(tmp / "queue.db"),
        "OTKLIK_DELIVERY_WORKERS": str(threads),
    }
    settings = Settings(
        database_url=db_url, queue_backend="sqlite", queue_path=str(tmp / "queue.db")
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "otklik.cli.main", "worker", "--no-resolve", "--no-dispatch"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            proc.stdout.readline()  # "worker running"
        runtime = DeliveryRuntime(engine, settings)
        started = time.perf_counter()
        for start in range(0, len(ids), batch):
            runtime.tasks.deliver(ids[start : start + batch])
        sent = 0
        while sent < count and time.perf_counter() - started < 600:
            time.sleep(0.05)
            with engine.connect() as conn:
                sent = conn.execute(
                    select(func.count()).where(Message.state == "sent")
                ).scalar_one()
        return count / (time.perf_counter() - started), sent
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        engine.dispose()


# ------------------------------------------------------------------------------------- SMS
# What a Russian shop sends: Cyrillic (so UCS-2, 70 characters a part), a third of it long
# enough for three concatenated parts, a tenth Latin one-time codes (GSM-7). The pipeline does
# not rewrite links in SMS (no click tracking there), so the link goes as the template has it.
SMS_TEMPLATE = (
    "{% if event.code %}Your code {{ event.code }}. Do not share it. [Shop]"
    "{% else %}{{ profile.traits.first_name }}, заказ №{{ event.order }} "
    "{% if event.long %}собран и передан в доставку. Курьер привезёт его завтра с 10:00 до "
    "14:00, сумма к оплате {{ event.total }} ₽. Отследить заказ: {{ event.url }}"
    "{% else %}готов к выдаче: {{ event.url }}{% endif %}{% endif %}"
)
SMSC_CONFIG = {"system_id": "otklik", "password": "secret", "source_addr": "Shop"}
# Every stage sends to numbers of its own, so the SMSC's distinct destinations count messages.
SMS_NUMBERS = {"smpp": 79120000000, "naive": 79130000000, "pipeline": 79140000000}


def sms_event(n: int) -> dict[str, Any]:
    if n % 10 == 9:
        return {"code": f"{(n * 7919) % 1_000_000:06d}"}
    return {
        "order": 100_000 + n,
        "long": n % 3 == 0,
        "total": 490 + 10 * (n % 300),
        "url": f"https://shop.example/o/{100_000 + n}",
    }


def sms_context(n: int) -> dict[str, Any]:
    return {
        "profile": {
            "id": f"p{n}",
            "phone": f"+{79140000000 + n}",
            "traits": {"first_name": f"Имя{n}"},
        },
        "event": sms_event(n),
        "message": {"id": f"m{n}", "channel": "sms"},
        "workspace": {"name": "Магазин", "currency": "RUB", "timezone": "UTC", "locale": "ru"},
    }


def sms_texts(count: int) -> list[str]:
    from otklik.templates.content import compile_content

    compiled = compile_content("sms", {"text": SMS_TEMPLATE})
    return [str(compiled.render(sms_context(n)).text) for n in range(count)]


def start_smsc(*options: str) -> tuple[subprocess.Popen[str], int]:
    return start_peer("tests.support.fake_smsc", *options)


def stop_smsc(proc: subprocess.Popen[str]) -> dict[str, Any]:
    import json

    out, _ = proc.communicate(timeout=30)
    return dict(json.loads(out.strip().splitlines()[-1]))


def smpp_adapter(port: int) -> Any:
    from otklik.channels.smpp import SmppConfig, SmppSmsAdapter

    return SmppSmsAdapter(
        SmppConfig.model_validate({"host": "127.0.0.1", "port": port, **SMSC_CONFIG})
    )


def bench_sms_render(count: int) -> float:
    from otklik.templates.content import compile_content

    compiled = compile_content("sms", {"text": SMS_TEMPLATE})
    contexts = [sms_context(n) for n in range(count)]
    started = time.perf_counter()
    for context in contexts:
        assert compiled.render(context).text
    return count / (time.perf_counter() - started)


def sms_parts(texts: list[str]) -> int:
    from otklik.channels.sms_parts import split_parts

    return sum(len(split_parts(t)) for t in texts)


def bench_smpp(texts: list[str], port: int) -> float:
    """Ready texts through one adapter, as many in flight as the sender allows a provider."""
    from otklik.channels.base import ChannelKind, OutboundMessage, Sent
    from otklik.delivery.sender import MAX_IN_FLIGHT

    adapter = smpp_adapter(port)
    base = SMS_NUMBERS["smpp"]

    async def run() -> float:
        sem = asyncio.Semaphore(MAX_IN_FLIGHT)

        async def one(n: int, text: str) -> None:
            async with sem:
                result = await adapter.send(
                    OutboundMessage(uuid.uuid4(), ChannelKind.SMS, f"+{base + n}", text)
                )
                assert isinstance(result, Sent), result

        started = time.perf_counter()
        await asyncio.gather(*(one(n, t) for n, t in enumerate(texts)))
        rate = len(texts) / (time.perf_counter() - started)
        await adapter.aclose()
        return rate

    return asyncio.run(run())


def bench_sms_naive(texts: list[str], port: int) -> float:
    """Connect, bind, submit (each part awaiting its response), unbind: per message."""
    from otklik.channels.base import ChannelKind, OutboundMessage, Sent

    base = SMS_NUMBERS["naive"]

    async def run() -> float:
        started = time.perf_counter()
        for n, text in enumerate(texts):
            adapter = smpp_adapter(port)
            result = await adapter.send(
                OutboundMessage(uuid.uuid4(), ChannelKind.SMS, f"+{base + n}", text)
            )
            assert isinstance(result, Sent), result
            await adapter.aclose()
        return len(texts) / (time.perf_counter() - started)

    return asyncio.run(run())


def seed_sms(engine: Any, count: int, port: int) -> list[Any]:
    from otklik.channels import service as channels
    from otklik.delivery.service import SendIntent, queue_many
    from otklik.kit.db import write_tx
    from otklik.templates import service as templates

    base = SMS_NUMBERS["pipeline"]
    # As shops import them: national format, normalised to E.164 by the adapter.
    people = [{"traits": {"first_name": f"Имя{n}"}, "phone": f"8{str(base + n)[1:]}"}
              for n in range(count)]  # fmt: skip
    ws, profiles = audience(engine, "s", "sms", people)
    with write_tx(engine) as conn:
        channels.create(
            conn,
            ws.id,
            kind="sms",
            provider="smpp",
            name="smsc",
            # The bench measures our code, not an SMSC contract's rate (typically 50-200/s).
            config={"host": "127.0.0.1", "port": port, "rate_per_second": 100000, **SMSC_CONFIG},
            is_default=True,
            enabled=True,
        )
        templates.create(
            conn,
            ws.id,
            templates.TemplateIn(
                key="order-sms",
                name="Order SMS",
                channel="sms",
                purpose="marketing",
                topic="",
                content={"text": SMS_TEMPLATE},
            ),
            author="bench",
        )
        queued = queue_many(
            conn,
            ws.id,
            [
                SendIntent(
                    template="order-sms", profile_id=p["id"], event=sms_event(n), source="campaign"
                )
                for n, p in enumerate(profiles)
            ],
        )
    return [q.id for q in queued]


def bench_sms_pipeline(
    db_url: str, count: int, port: int, workers: int, batch: int
) -> tuple[float, dict[str, int]]:
    return run_pipeline(db_url, lambda engine: seed_sms(engine, count, port), workers, batch)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--pool", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1, help="pipeline threads (GIL: 1 is best)")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--naive", type=int, default=100, help="messages for the naive baseline")
    parser.add_argument("--processes", type=int, default=2, help="`otklik worker` processes")
    parser.add_argument("--threads", type=int, default=1, help="queue consumer threads each")
    parser.add_argument(
        "--backend",
        choices=["sqlite", "postgres", "both"],
        default="sqlite",
        help="store for the pipeline and worker stages (postgres: a throwaway local server)",
    )
    parser.add_argument("--sms", type=int, default=2000, help="SMS messages (0: no SMS stages)")
    parser.add_argument("--sms-naive", type=int, default=100, help="SMS for the naive baseline")
    parser.add_argument("--no-email", action="store_true", help="only the SMS stages")
    args = parser.parse_args()

    if not args.no_email:
        run_email(args)
    if args.sms:
        run_sms(args)


def run_sms(args: argparse.Namespace) -> None:
    render = bench_sms_render(args.sms)
    emit(BENCH, "sms_render", render, "messages/s", stage="SMS template render, 1 core")
    texts = sms_texts(args.sms)
    parts = sms_parts(texts)
    smsc, port = start_smsc()
    sent = len(texts) + len(texts[: args.sms_naive])
    submits = parts + sms_parts(texts[: args.sms_naive])
    try:
        smpp = bench_smpp(texts, port)
        naive = bench_sms_naive(texts[: args.sms_naive], port)
        emit(
            BENCH,
            "smpp",
            smpp,
            "messages/s",
            parts_per_s=round(smpp * parts / len(texts)),
            parts=parts,
            long=sum(len(t) > 70 for t in texts),  # the Latin codes are all short
            link="1 transceiver bind",
            baseline=round(naive, 1),
            ratio=round(smpp / naive, 1),
        )
        emit(BENCH, "sms_naive", naive, "messages/s", how="bind per message, one at a time")
        backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
        for backend in backends:
            with store(backend) as url:
                rate, outcome = bench_sms_pipeline(url, args.sms, port, args.workers, args.batch)
            # The pipeline renders the same texts (same names and events) as the stages above.
            sent, submits = sent + outcome["sent"], submits + parts
            emit(
                BENCH,
                "sms_pipeline",
                rate,
                "messages/s",
                backend=backend,
                workers=args.workers,
                batch=args.batch,
                sent=outcome["sent"],
                baseline=round(naive, 1),
                ratio=round(rate / naive, 1),
            )
    finally:
        counts = stop_smsc(smsc)
    # Exactly once: every message reassembled whole at the SMSC, none twice, no part resent.
    exact = (
        counts["messages"] == counts["distinct_destinations"] == sent
        and counts["accepted_submits"] == counts["distinct_submit_ids"] == submits
        and counts["unfinished_long_messages"] == 0
        and not counts["errors"]
    )
    emit(
        BENCH,
        "smsc",
        int(exact),
        "exactly_once",
        own_process=True,
        expected_messages=sent,
        expected_submits=submits,
        **counts,
    )


def run_email(args: argparse.Namespace) -> None:
    render = bench_render(min(args.messages, 2000))
    emit(BENCH, "render", render, "messages/s", stage="render+links+pixel, 1 core")
    sink, port = start_sink()
    try:
        smtp = bench_smtp(args.messages, port, args.pool)
        lockstep_sink, lockstep_port = start_sink("--no-pipelining")
        try:
            lockstep = bench_smtp(args.messages, lockstep_port, args.pool)
        finally:
            stop_sink(lockstep_sink)
        emit(
            BENCH,
            "smtp",
            smtp,
            "messages/s",
            pool=args.pool,
            body="16 KB HTML",
            pipelining=True,
            baseline=round(lockstep, 1),
            ratio=round(smtp / lockstep, 2),
        )
        emit(BENCH, "smtp_lockstep", lockstep, "messages/s", pool=args.pool, pipelining=False)
        naive = bench_naive(args.naive, port)
        emit(BENCH, "naive", naive, "messages/s", how="mjml per message, connection per message")
        backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
        for backend in backends:
            with store(backend) as url:
                rate, outcome = bench_pipeline(
                    url, args.messages, port, args.pool, args.workers, args.batch
                )
            emit(
                BENCH,
                "pipeline",
                rate,
                "messages/s",
                backend=backend,
                workers=args.workers,
                batch=args.batch,
                sent=outcome["sent"],
                baseline=round(naive, 1),
                ratio=round(rate / naive, 1),
            )
            with store(backend) as url, tempfile.TemporaryDirectory() as tmp:
                rate, sent = bench_workers(
                    url,
                    args.messages,
                    port,
                    args.pool,
                    args.processes,
                    args.batch,
                    Path(tmp),
                    args.threads,
                )
            emit(
                BENCH,
                "workers",
                rate,
                "messages/s",
                backend=backend,
                processes=args.processes,
                threads=args.threads,
                queue="huey/sqlite",
                sent=sent,
                baseline=round(naive, 1),
                ratio=round(rate / naive, 1),
            )
    finally:
        counts = stop_sink(sink)
    emit(BENCH, "sink", 0, "info", received=counts)


if __name__ == "__main__":
    main()
