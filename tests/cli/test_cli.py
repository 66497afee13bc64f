"""The `otklik` command line, run as a real process against a real database.

Every command reads its database from OTKLIK_DATABASE_URL; the module's database (a SQLite
file, or a fresh database on the test PostgreSQL server) is shared with the in-process
`engine`, which seeds data and checks what the commands stored. Reports and progress go to
standard error, data (exports) to standard output or `--out`.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, func, select

from otklik.config import Settings
from otklik.kit.db import session_scope
from otklik.kit.time import utc_now
from otklik.models import ChannelSetting, Consent, Event, Message, Order, Profile, Segment, Template
from otklik.offline.service import event_rows, run_import, store
from otklik.users import service as users
from otklik.worker.resolver_loop import ResolverLoop
from otklik.workspaces import service as workspaces
from otklik.workspaces.auth import Authenticator
from otklik.workspaces.keys import SECRET, WRITE
from tests.conftest import Tenant, database_url, make_tenant
from tests.offline.support import CUSTOMER_HEADER, ORDER_HEADER, csv_file, event_count

Done = subprocess.CompletedProcess[str]


@dataclass
class Cli:
    """`python -m otklik.cli.main ARGS` on the module's database, run in `home`."""

    home: Path
    env: dict[str, str]

    def __call__(
        self, *args: str | Path, check: int | None = 0, env: dict[str, str] | None = None
    ) -> Done:
        done = subprocess.run(
            [sys.executable, "-m", "otklik.cli.main", *map(str, args)],
            cwd=self.home,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check is not None:
            assert done.returncode == check, (done.returncode, done.stdout, done.stderr)
        return done


CUSTOMERS = csv_file(
    CUSTOMER_HEADER,
    [
        ("c-1", "Anna@Shop.RU", "8 (912) 345-67-01", "Анна", "1990-01-02", "Москва"),
        ("c-2", "boris@", "", "Борис", "", "Тула"),  # invalid email
        ("c-3", "", "89123456703", "Вера", "", "Омск"),
        ("c-4", "", "12", "Глеб", "", ""),  # invalid phone
        ("", "nobody@shop.ru", "", "Некто", "", ""),  # no external_id
    ],
)


@pytest.fixture(scope="module")
def cli(db_url: str, engine: Engine, tmp_path_factory: Any) -> Cli:
    """The command line on this module's database (`engine` made its schema already)."""
    home = tmp_path_factory.mktemp("cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTKLIK_")}
    env.update(
        OTKLIK_DATABASE_URL=db_url,
        OTKLIK_SQLITE_SYNCHRONOUS="NORMAL",
        OTKLIK_QUEUE_PATH=str(home / "queue.db"),
        OTKLIK_DEMO_KEYS=str(home / "demo-keys.txt"),
        COLUMNS="200",  # rich wraps tables and long lines at 80 columns without a terminal
    )
    return Cli(home, env)


def count(engine: Engine, model: Any, workspace_id: uuid.UUID, *where: Any) -> int:
    with engine.connect() as conn:
        stmt = select(func.count()).select_from(model).where(model.workspace_id == workspace_id)
        return int(conn.execute(stmt.where(*where)).scalar_one())


def jsonl(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines()]


def test_workspace_create_prints_a_write_key_and_a_secret_key_that_work(
    cli: Cli, engine: Engine
) -> None:
    out = cli("workspace", "create", "shop", "--currency", "EUR").stdout

    found = re.search(r"workspace shop ([0-9a-f-]{36})", out)
    write = re.search(r"write key.*?(\S+)$", out, re.M)
    secret = re.search(r"secret key.*?(\S+)$", out, re.M)
    assert found and write and secret, out
    auth = Authenticator(engine)
    for token, kind in [(write[1], WRITE), (secret[1], SECRET)]:
        owner = auth.owner_of(token)
        assert owner is not None, token
        assert (owner.workspace_id, owner.kind) == (uuid.UUID(found[1]), kind)


def test_import_customers_reports_rejected_rows_and_writes_them_to_errors_csv(
    cli: Cli, engine: Engine, tenant: Tenant, tmp_path: Path
) -> None:
    source, errors = tmp_path / "customers.csv", tmp_path / "err.csv"
    source.write_bytes(CUSTOMERS)

    done = cli("import", "customers", source, "-w", tenant.slug, "--errors", errors)

    assert "5 rows read, 2 accepted (2 new, 0 unchanged), 3 rejected" in done.stderr
    with errors.open(encoding="utf-8") as handle:
        listed = [(r["row"], r["code"], r["field"]) for r in csv.DictReader(handle)]
    assert listed == [
        ("2", "invalid_email", "email"),
        ("4", "invalid_phone", "phone"),
        ("5", "missing_external_id", "external_id"),
    ]
    # The command resolves what it stored before it exits.
    assert count(engine, Profile, tenant.id, Profile.merged_into.is_(None)) == 2
    assert count(engine, Event, tenant.id, Event.status == 0) == 0

    again = cli("import", "customers", source, "--workspace", tenant.slug)
    assert "2 accepted (0 new, 2 unchanged), 3 rejected" in again.stderr
    assert event_count(engine, tenant.id) == 2


def test_import_orders_from_json_lines_by_the_file_extension(
    cli: Cli, engine: Engine, tenant: Tenant, tmp_path: Path
) -> None:
    lines = [
        {"order_id": "o-1", "customer_external_id": "c-1", "placed_at": "2026-03-01",
         "total": 300, "sku": "A", "quantity": 1, "price": 100},
        {"order_id": "o-1", "customer_external_id": "c-1", "placed_at": "2026-03-01",
         "total": 300, "sku": "B", "quantity": 2, "price": 100},
        {"order_id": "o-2", "customer_external_id": "c-1", "placed_at": "2026-03-02",
         "total": -5, "sku": "A", "quantity": 1, "price": 5},
    ]  # fmt: skip
    source = tmp_path / "orders.jsonl"
    source.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))

    done = cli("import", "orders", source, "-w", tenant.slug)

    assert "3 rows read, 1 accepted (1 new, 0 unchanged), 1 rejected" in done.stderr
    assert "invalid_amount" in done.stderr
    assert count(engine, Order, tenant.id) == 1


def seed_shop(engine: Engine, settings: Settings, tenant: Tenant) -> None:
    """Customers and orders imported, plus one visitor who later logs in as c-1 (a merge)."""
    now = utc_now()
    visit = {"type": "page", "anonymousId": "anon-1", "messageId": "v-1", "name": "Home"}
    store(engine, event_rows(tenant.id, [visit], now))
    for kind, data in [
        ("customers", CUSTOMERS),
        (
            "orders",
            csv_file(ORDER_HEADER, [("o-1", "c-1", "2026-03-01", "250", "", "A", "", "", "")]),
        ),
    ]:
        run_import(engine, tenant.id, kind, data, "csv", region="RU", currency="RUB", now=now)
    login = {"type": "identify", "userId": "c-1", "anonymousId": "anon-1", "messageId": "l-1"}
    store(engine, event_rows(tenant.id, [login], now))
    ResolverLoop(engine, settings).drain()


def test_export_profiles_writes_one_json_object_per_person_with_identities(
    cli: Cli, engine: Engine, settings: Settings, tenant: Tenant, tmp_path: Path
) -> None:
    seed_shop(engine, settings, tenant)
    out = tmp_path / "p.jsonl"

    cli("export", "profiles", "-w", tenant.slug, "--out", out)

    profiles = jsonl(out.read_text(encoding="utf-8"))
    assert len(profiles) == 2  # c-1 (with the visitor merged in) and c-3
    assert len({p["id"] for p in profiles}) == 2
    by_user = {i["value"]: p for p in profiles for i in p["identities"] if i["type"] == "user_id"}
    anna = by_user["c-1"]
    assert {(i["type"], i["value"]) for i in anna["identities"]} == {
        ("user_id", "c-1"),
        ("anonymous_id", "anon-1"),
        ("email", "anna@shop.ru"),
        ("phone", "+79123456701"),
    }
    assert (anna["email"], anna["phone"]) == ("anna@shop.ru", "+79123456701")
    assert anna["traits"]["firstName"] == "Анна"
    assert (anna["orders_count"], anna["revenue"]) == (1, "250.00")
    assert by_user["c-3"]["phone"] == "+79123456703"


def test_export_events_writes_the_log_to_standard_output(
    cli: Cli, engine: Engine, settings: Settings, tenant: Tenant
) -> None:
    seed_shop(engine, settings, tenant)

    events = jsonl(cli("export", "events", "--workspace", tenant.slug).stdout)

    assert len(events) == event_count(engine, tenant.id)
    kinds = [(e["type"], e.get("event")) for e in events]
    assert kinds[:4] == [
        ("page", None),
        ("identify", None),
        ("identify", None),
        ("track", "Order Completed"),
    ]
    assert ("system", "profile.merged") in kinds
    assert all(e["profileId"] for e in events)
    assert sum(e["messageId"].startswith("import:") for e in events) == 3


def test_demo_loads_a_shop_and_if_empty_leaves_it_alone(cli: Cli, engine: Engine) -> None:
    done = cli("demo", "--customers", "50", "--workspace", "demo-shop")

    assert "demo shop loaded" in done.stderr
    reports = re.findall(r"^(customers|orders): .* (\d+) rejected$", done.stderr, re.M)
    assert [kind for kind, _ in reports] == ["customers", "orders"]
    assert all(int(rejected) > 0 for _, rejected in reports)  # the deliberately bad rows
    for code in ("invalid_email", "invalid_phone", "missing_external_id", "invalid_amount"):
        assert code in done.stderr
    keys = cli.home / "demo-keys.txt"  # OTKLIK_DEMO_KEYS: the new workspace's keys, private
    found = re.fullmatch(
        r"write_key=wk_\S+\nsecret_key=sk_\S+\n"
        r"console_users=admin@example.com,marketer@example.com,operator@example.com,"
        r"viewer@example.com\nconsole_password=(\S+)\n",
        keys.read_text(),
    )
    assert found, keys.read_text()
    assert keys.stat().st_mode & 0o077 == 0
    with session_scope(engine) as session:
        admin = users.authenticate(session, "admin@example.com", found.group(1), utc_now())
        spaces = users.workspaces_of(session, admin.id)
    assert [(ws.slug, role) for ws, role in spaces] == [("demo-shop", "admin")]
    tenant = workspace_id(engine, "demo-shop")
    events = event_count(engine, tenant)
    assert events > 0
    assert count(engine, Profile, tenant, Profile.merged_into.is_(None)) > 0
    assert count(engine, Order, tenant) > 0
    assert count(engine, Event, tenant, Event.status == 0) == 0  # all resolved
    # Messaging comes set up: log-only providers, templates, consent, and real sends.
    assert count(engine, ChannelSetting, tenant) == 4
    assert count(engine, Template, tenant) == 4
    assert count(engine, Consent, tenant) > 0
    assert count(engine, Message, tenant, Message.state.in_(("sent", "opened", "clicked"))) > 0
    # Segments come built, and rebuild from the CLI with their figures.
    built = count(engine, Segment, tenant, Segment.state == "ready")
    assert built >= 5 and built == count(engine, Segment, tenant)
    rebuilt = cli("segments", "rebuild", "Moscow", "Leaving", "--workspace", "demo-shop")
    assert re.search(r"^Moscow: [\d,]+ members \(\+0 / -0\) in [\d,]+ ms$", rebuilt.stdout, re.M)
    assert re.search(r"^Leaving: ", rebuilt.stdout, re.M)
    listed = cli("segments", "list", "--workspace", "demo-shop")
    assert "Moscow" in listed.stdout and "ready" in listed.stdout

    again = cli("demo", "--customers", "50", "--workspace", "demo-shop", "--if-empty")

    assert "already has data; skipping" in again.stderr
    assert event_count(engine, tenant) == events


def test_user_create_makes_a_console_admin_and_refuses_bad_input(cli: Cli, engine: Engine) -> None:
    cli("workspace", "create", "user-shop")
    env = {"OTKLIK_USER_PASSWORD": "a-long-secret-77"}
    made = cli("user", "create", "Boss@Example.com", "-w", "user-shop", env=env)
    assert "boss@example.com is admin of workspace user-shop" in made.stdout
    assert "a-long-secret-77" not in made.stdout + made.stderr
    with session_scope(engine) as session:
        users.authenticate(session, "boss@example.com", "a-long-secret-77", utc_now())
    again = cli("user", "create", "boss@example.com", "-w", "user-shop", env=env, check=2)
    assert "user_exists" in again.stdout
    weak = {"OTKLIK_USER_PASSWORD": "short"}
    refused = cli("user", "create", "x@example.com", "-w", "user-shop", env=weak, check=2)
    assert "weak_password" in refused.stdout
    owner = ("--role", "owner")
    role = cli("user", "create", "y@example.com", "-w", "user-shop", *owner, env=env, check=2)
    assert "unknown_role" in role.stdout
    listed = cli("user", "list", "-w", "user-shop")
    assert listed.stdout.split() == ["boss@example.com", "admin"]


def workspace_id(engine: Engine, slug: str) -> uuid.UUID:
    with session_scope(engine, write=False) as session:
        return workspaces.find_workspace(session, slug).id


def test_an_unknown_workspace_is_exit_2_with_a_clear_message(cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "c.csv"
    source.write_bytes(CUSTOMERS)

    done = cli("import", "customers", source, "-w", "nowhere", check=2)

    assert "No workspace 'nowhere'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_file_that_cannot_be_read_is_exit_2_and_stores_nothing(
    cli: Cli, engine: Engine, tmp_path: Path
) -> None:
    tenant = make_tenant(engine)
    source = tmp_path / "cp1251.csv"
    source.write_bytes("external_id,city\nc-1,Москва\n".encode("cp1251"))

    done = cli("import", "customers", source, "-w", tenant.slug, check=2)

    assert "invalid_encoding" in done.stderr
    assert "Traceback" not in done.stderr
    assert event_count(engine, tenant.id) == 0


def test_export_from_a_database_never_migrated_is_exit_2_not_a_traceback(
    cli: Cli, backend: str, request: pytest.FixtureRequest, tmp_path_factory: Any
) -> None:
    empty = database_url(backend, request, tmp_path_factory)

    done = cli("export", "events", "-w", "shop", check=2, env={"OTKLIK_DATABASE_URL": empty})

    assert "No workspace 'shop'" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_taken_or_malformed_slug_is_exit_2_with_its_code(cli: Cli) -> None:
    slug = f"dup-{uuid.uuid4().hex[:6]}"
    cli("workspace", "create", slug)

    taken = cli("workspace", "create", slug, check=2)
    malformed = cli("workspace", "create", "Not A Slug", check=2)

    assert "workspace_exists" in taken.stdout + taken.stderr
    assert "invalid_slug" in malformed.stdout + malformed.stderr
    assert "Traceback" not in taken.stderr + malformed.stderr
