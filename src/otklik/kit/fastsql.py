"""Statements compiled once per dialect and run through the driver's own cursor.

The segment loop runs about twenty small statements for every changed profile. SQLite answers
each in tens of microseconds; SQLAlchemy's execution path around it (the compiled-cache lookup,
parameter construction, re-rendering every expanding `IN` list, result set-up) cost about
half of the loop's time in a profile. A `Fast` statement keeps SQLAlchemy for what it is good
at — building and compiling the SQL, and the types' bind and result conversions — and skips
the per-execution machinery: the SQL string, the parameter order and the converters are worked
out once, then each run is one `cursor.execute` on the connection's current transaction.

Lists of ids travel as one parameter (`among`): a JSON array read by `json_each` on SQLite, an
array with `= ANY` on PostgreSQL. So the SQL text never depends on how many ids there are.
"""

from __future__ import annotations

import uuid
from collections import namedtuple
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Boolean, ColumnElement, Connection, String, TypeDecorator, Uuid, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ClauseElement
from sqlalchemy.sql.visitors import InternalTraversal


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
        return orjson.dumps([self.stored(i) for i in items]).decode()

    @staticmethod
    def stored(item: Any) -> Any:
        return item.hex  # Uuid is stored as 32 hex digits on SQLite


class TextList(IdList):
    """A list of strings bound as one parameter."""

    item = String()

    @staticmethod
    def stored(item: Any) -> Any:
        return str(item)


class Among(ColumnElement[bool]):
    """`column IN (the ids of one IdList parameter)`."""

    inherit_cache = True
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
    column = compiler.process(element.column, **kw)
    return f"{column} IN (SELECT value FROM json_each({compiler.process(element.ids, **kw)}))"


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
class _Plan:
    sql: str
    # For each driver parameter: its name, the bind (for values fixed or read at run time),
    # and the type's converter.
    binds: list[tuple[str, BindParameter[Any] | None, Callable[[Any], Any] | None]]
    constants: dict[str, Any]  # values of the expanded fixed lists, by parameter name
    positional: bool
    converters: list[Callable[[Any], Any] | None]
    row: Any  # a namedtuple class for the selected columns


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

    def many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
        """The statement once per parameter set (an INSERT of many rows)."""
        if not rows:
            return
        plan = self._plan(conn.dialect)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.executemany(plan.sql, [self._args(plan, row) for row in rows])

    def _run(self, conn: Connection, params: Mapping[str, Any] | None) -> tuple[_Plan, Any]:
        plan = self._plan(conn.dialect)
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        cursor.execute(plan.sql, self._args(plan, params or {}))
        return plan, cursor

    @staticmethod
    def _args(plan: _Plan, params: Mapping[str, Any]) -> Any:
        values = []
        for name, bind, convert in plan.binds:
            if name in params:
                value = params[name]
            elif bind is None:
                value = plan.constants[name]
            elif bind.callable is not None:
                value = bind.callable()
            else:
                value = bind.value
            values.append(value if convert is None else convert(value))
        if plan.positional:
            return tuple(values)
        return {name: value for (name, _, _), value in zip(plan.binds, values, strict=True)}

    def _plan(self, dialect: Dialect) -> _Plan:
        plan = self._plans.get(dialect.name)
        if plan is None:
            plan = self._plans[dialect.name] = self._compile(dialect)
        return plan

    def _compile(self, dialect: Dialect) -> _Plan:
        compiled = self.statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        if compiled.literal_execute_params:
            raise ValueError("Fast statements cannot render literal-execute parameters")
        by_name: dict[str, BindParameter[Any] | None] = {
            name: bind for bind, name in compiled.bind_names.items()
        }
        processors: dict[str, Any] = dict(compiled._bind_processors)
        sql = compiled.string
        positions: Sequence[str] | None = compiled.positiontup
        # Positional styles list a parameter again wherever it is used; named ones once.
        names = list(dict.fromkeys(compiled.bind_names.values()))
        constants: dict[str, Any] = {}
        if compiled.post_compile_params:
            # `IN` over a fixed list in the rules ("city in [...]") is rendered once, here;
            # lists that change per run must come through among().
            expanding = {compiled.bind_names[b] for b in compiled.post_compile_params}
            if any(b.callable is not None for b in compiled.post_compile_params):
                raise ValueError("Fast statements take changing lists through among()")
            required = {b.key: None for b in compiled.binds.values() if b.required}
            state = compiled.construct_expanded_state(required)
            sql, positions = state.statement, state.positiontup
            processors.update(state.processors)
            names = [n for n in state.parameters if n not in expanding]
            constants = {n: state.parameters[n] for n in names if n not in by_name}
            by_name.update(dict.fromkeys(constants))
        binds = [(n, by_name[n], processors.get(n)) for n in positions or names]
        columns = list(getattr(self.statement, "selected_columns", ()))
        converters = [c.type._cached_result_processor(dialect, None) for c in columns]
        keys = [str(getattr(c, "key", None) or f"c{n}") for n, c in enumerate(columns)]
        return _Plan(
            sql=sql,
            binds=binds,
            constants=constants,
            positional=bool(positions),
            converters=converters,
            row=namedtuple("Row", keys or ["_"], rename=True),
        )
