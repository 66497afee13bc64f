"""Statements compiled once per dialect and run through the driver's own cursor.

The segment loop runs about twenty small statements for every changed profile. SQLite answers
each in tens of microseconds; SQLAlchemy's execution path around it (the compiled-cache lookup,
parameter construction, re-rendering every expanding `IN` list, result set-up) took about
half of the loop's time in a profile. A `Fast` statement keeps SQLAlchemy for what it is good
at — building and compiling the SQL, and the types' bind and result conversions — and skips
the per-execution machinery: the SQL text, the parameters and the converters are worked out
once, then each run is one `cursor.execute` on the connection's current transaction.
(`kit/rawsql.py` is the other way, for a few statements simple enough to write by hand with
values converted by hand; `Fast` is for statements built from SQLAlchemy constructs, such as
a segment's compiled rules.)

Lists of ids that change from run to run go through `among`: on PostgreSQL one array
parameter (`= ANY`); on SQLite a list of parameters (`IN (:a__0, :a__1)`), because SQLite's
planner, which has no statistics, only trusts a literal list to be short: from `json_each`
it chose to scan whole tables. The list is padded to a power of two (with its last id again),
so a statement has a handful of texts, each prepared once by the driver.
"""

from __future__ import annotations

import copy
import uuid
from collections import namedtuple
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import orjson
from sqlalchemy import Boolean, ColumnElement, Connection, String, TypeDecorator, Uuid, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ClauseElement
from sqlalchemy.sql.visitors import InternalTraversal

Converter = Callable[[Any], Any] | None


class IdList(TypeDecorator[list[uuid.UUID]]):
    """A list of UUIDs bound as one parameter (see `among`)."""

    impl = String
    cache_ok = True
    item: Any = Uuid()

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(ARRAY(self.item))
        return dialect.type_descriptor(String())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        items = list(value or ())
        if dialect.name == "postgresql":
            return items
        # Outside a Fast statement SQLite reads the list with json_each (correct, but see above).
        convert = self.item.bind_processor(dialect)
        return orjson.dumps([convert(i) if convert else i for i in items]).decode()


class TextList(IdList):
    """A list of strings bound as one parameter."""

    item = String()


class Among(ColumnElement[bool]):
    """`column IN (the values of one IdList or TextList parameter)`."""

    inherit_cache = True
    # A comparison, not a boolean column: SQLite would otherwise get `... IN (...) = 1`,
    # which no index serves.
    _is_implicitly_boolean = True
    _traverse_internals = [
        ("column", InternalTraversal.dp_clauseelement),
        ("ids", InternalTraversal.dp_clauseelement),
    ]
    type = Boolean()

    def __init__(self, column: ColumnElement[Any], ids: BindParameter[Any]) -> None:
        self.column = column
        self.ids = ids


@compiles(Among, "sqlite")
def _among_sqlite(element: Among, compiler: SQLCompiler, **kw: Any) -> str:
    column, ids = compiler.process(element.column, **kw), compiler.process(element.ids, **kw)
    if kw.get("fast_lists"):
        return f"{column} IN ({ids})"  # a Fast statement expands it (see _Plan.text)
    return f"{column} IN (SELECT value FROM json_each({ids}))"


@compiles(Among)
def _among_array(element: Among, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} = ANY({compiler.process(element.ids, **kw)})"


def ids_param(name: str | None = None, callable_: Callable[[], Any] | None = None) -> Any:
    """A bind parameter holding a list of UUIDs (named, or read from `callable_` at run time)."""
    return _list_param(IdList(), name, callable_)


def texts_param(name: str | None = None, callable_: Callable[[], Any] | None = None) -> Any:
    return _list_param(TextList(), name, callable_)


def _list_param(type_: Any, name: str | None, callable_: Callable[[], Any] | None) -> Any:
    if callable_ is not None:
        return bindparam(name, type_=type_, unique=name is None, callable_=callable_)
    return bindparam(name, type_=type_)


def among(column: Any, values: Any) -> ColumnElement[bool]:
    """`column IN values`, where `values` is an `ids_param` or a `texts_param`."""
    return Among(column, values)


@dataclass
class _Bind:
    name: str
    bind: BindParameter[Any] | None  # None: a value of a fixed list, in `constant`
    convert: Converter
    constant: Any = None
    # SQLite, a list given through among(): converts each item; the list becomes parameters.
    expand: Converter | None = None
    is_list: bool = False


@dataclass
class _Plan:
    sql: str
    binds: list[_Bind]
    converters: list[Converter]
    row: Any  # a namedtuple class for the selected columns
    texts: dict[tuple[int, ...], str] = field(default_factory=dict)

    def text(self, sizes: tuple[int, ...]) -> str:
        """The SQL with each expanded list as that many parameters."""
        found = self.texts.get(sizes)
        if found is None:
            found = self.sql
            lists = [b.name for b in self.binds if b.is_list]
            for name, size in zip(lists, sizes, strict=True):
                names = ", ".join(f":{name}__{n}" for n in range(size))
                found = found.replace(f"(:{name})", f"({names})")
            self.texts[sizes] = found
        return found


def _bucket(n: int) -> int:
    return 0 if n == 0 else 1 << (n - 1).bit_length()


class Fast:
    """One statement, compiled once per dialect, run on the driver's cursor."""

    def __init__(self, statement: ClauseElement) -> None:
        self.statement = statement
        self._plans: dict[str, _Plan] = {}

    def rows(self, conn: Connection, params: Mapping[str, Any] | None = None) -> list[Any]:
        """The rows, as named tuples of converted values."""
        plan, cursor = self._run(conn, params)
        found = cursor.fetchall()
        make, converters = plan.row, plan.converters
        if not any(converters):
            return [make._make(row) for row in found]
        return [
            make._make(
                v if f is None or v is None else f(v) for f, v in zip(converters, row, strict=True)
            )
            for row in found
        ]

    def execute(self, conn: Connection, params: Mapping[str, Any] | None = None) -> int:
        """Run a statement that returns no rows; the driver's row count."""
        _plan, cursor = self._run(conn, params)
        return int(cursor.rowcount)

    def _run(self, conn: Connection, params: Mapping[str, Any] | None) -> tuple[_Plan, Any]:
        plan = self._plan(conn.dialect)
        sql, args = self._args(plan, params or {})
        cursor = _cursor(conn)
        cursor.execute(sql, args)
        return plan, cursor

    @staticmethod
    def _args(plan: _Plan, params: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        args: dict[str, Any] = {}
        sizes: list[int] = []
        for b in plan.binds:
            if b.name in params:
                value = params[b.name]
            elif b.bind is None:
                value = b.constant
            elif b.bind.callable is not None:
                value = b.bind.callable()
            else:
                value = b.bind.value
            if b.is_list:
                items = [b.expand(v) if b.expand else v for v in value]
                size = _bucket(len(items))
                sizes.append(size)
                for n in range(size):
                    args[f"{b.name}__{n}"] = items[min(n, len(items) - 1)]
                continue
            args[b.name] = value if b.convert is None else b.convert(value)
        return plan.text(tuple(sizes)) if sizes else plan.sql, args

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = self._compile(dialect)
        return plan

    def _compile(self, dialect: Dialect) -> _Plan:
        if dialect.name == "sqlite":
            # Named parameters, so a list can become several without renumbering the rest.
            dialect = copy.copy(dialect)
            dialect.paramstyle, dialect.positional = "named", False
        compiled = self.statement.compile(dialect=dialect, compile_kwargs={"fast_lists": True})
        assert isinstance(compiled, SQLCompiler)
        if compiled.literal_execute_params or compiled.positiontup:
            raise ValueError("Fast statements need named parameters and no literal execution")
        processors: dict[str, Any] = dict(compiled._bind_processors)
        sql = compiled.string
        binds = {
            name: _Bind(name, bind, processors.get(name))
            for bind, name in compiled.bind_names.items()
        }
        if compiled.post_compile_params:
            # `IN` over a fixed list in the rules ("city in [...]") is rendered once, here;
            # lists that change per run must come through among().
            if any(b.callable is not None for b in compiled.post_compile_params):
                raise ValueError("Fast statements take changing lists through among()")
            required = {b.key: None for b in compiled.binds.values() if b.required}
            state = compiled.construct_expanded_state(required)
            sql = state.statement
            for b in compiled.post_compile_params:
                del binds[compiled.bind_names[b]]
            for name, value in state.parameters.items():
                if name not in binds:
                    binds[name] = _Bind(name, None, state.processors.get(name), constant=value)
        if dialect.name == "sqlite":
            for entry in binds.values():
                if entry.bind is not None and isinstance(entry.bind.type, IdList):
                    entry.is_list, entry.convert = True, None
                    entry.expand = cast(IdList, entry.bind.type).item.bind_processor(dialect)
        columns = list(getattr(self.statement, "selected_columns", ()))
        keys = [str(getattr(c, "key", None) or f"c{n}") for n, c in enumerate(columns)]
        return _Plan(
            sql=sql,
            binds=list(binds.values()),
            converters=[c.type._cached_result_processor(dialect, None) for c in columns],
            row=namedtuple("Row", keys or ["_"], rename=True),
        )


def _cursor(conn: Connection) -> Any:
    if not conn.in_transaction():
        conn.begin()  # as SQLAlchemy's own first execute would ("autobegin")
    return conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
