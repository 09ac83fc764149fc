"""The shapes `_core.pyi` declares for what the native core returns, checked on real results.

The stub's TypedDicts exist for type checkers only: the module returns plain dicts, and
stubtest compares signatures, not the keys of a returned dict. This reads the stub as Python
(its TypedDicts and aliases, and the return annotation of every function and method), and
`checked_core()` wraps `phoenix_salt._core` so that every call a test makes in this process
has its result compared with the declared type: no undeclared key, every required key, each
value of its declared type, recursively. tests/conftest.py turns it on for the whole session,
so a stub that drifts from the Rust side fails the first test that meets the difference.
"""

from __future__ import annotations

import ast
import functools
import os
import types
import typing
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, NotRequired, TypeAlias, TypedDict, get_args, get_origin

from phoenix_salt import _core

STUB = Path(__file__).resolve().parents[1] / "python" / "phoenix_salt" / "_core.pyi"


class ShapeError(AssertionError):
    pass


def _declarations() -> tuple[dict[str, Any], dict[str, ast.expr]]:
    """The stub's type declarations, evaluated in order, and each callable's return
    annotation ("Engine.poll", "parse_message") as an expression."""
    tree = ast.parse(STUB.read_text())
    namespace: dict[str, Any] = {
        "Literal": Literal,
        "NotRequired": NotRequired,
        "TypeAlias": TypeAlias,
        "TypedDict": TypedDict,
    }
    returns: dict[str, ast.expr] = {}
    for node in tree.body:
        is_typeddict = isinstance(node, ast.ClassDef) and any(
            ast.unparse(base) == "TypedDict" or ast.unparse(base).startswith("_")
            for base in node.bases
        )
        is_alias = isinstance(node, ast.AnnAssign) and ast.unparse(node.annotation) == "TypeAlias"
        is_functional = isinstance(node, ast.Assign) and "TypedDict(" in ast.unparse(node.value)
        if is_typeddict or is_alias or is_functional:
            # Not inheriting this file's `from __future__ import annotations`: TypedDict
            # sees NotRequired only in annotations evaluated at once.
            module = ast.Module(body=[node], type_ignores=[])
            code = compile(module, str(STUB), "exec", dont_inherit=True)
            exec(code, namespace)  # noqa: S102 - the project's own stub
        elif isinstance(node, ast.FunctionDef) and node.returns is not None:
            returns[node.name] = node.returns
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if not isinstance(item, ast.FunctionDef) or item.returns is None:
                    continue
                # Properties are settings (Config and its sections), whose values
                # tests/unit/test_config.py holds to the effective configuration.
                if not any(ast.unparse(d) == "property" for d in item.decorator_list):
                    returns[f"{node.name}.{item.name}"] = item.returns
    return namespace, returns


@functools.cache
def _stub() -> tuple[dict[str, Any], dict[str, ast.expr]]:
    return _declarations()


@functools.cache
def declared_return(name: str) -> Any:
    """The declared return type of "Class.method" or "function"; None if it is a class of
    the module itself (its own objects are not dicts to check). Evaluated once per name:
    a wrapped object looks its methods up on every call. A name the stub does not define
    raises NameError, so a misspelt TypedDict cannot leave a result unchecked."""
    namespace, returns = _stub()
    text = ast.unparse(returns[name])
    if text in _core.__all__:
        return None
    return eval(text, dict(namespace, os=os))  # noqa: S307 - the project's own stub


def check(value: Any, hint: Any, where: str = "result") -> None:
    """Raise ShapeError where `value` is not of the declared type `hint`."""
    if hint is Any or hint is object:
        return
    if hint is None or hint is type(None):
        if value is not None:
            raise ShapeError(f"{where}: {value!r} where None is declared")
        return
    if typing.is_typeddict(hint):
        _check_typeddict(value, hint, where)
        return
    origin = get_origin(hint)
    if origin in (types.UnionType, typing.Union):
        _check_union(value, hint, where)
    elif origin in _CONTAINERS:
        _CONTAINERS[origin](value, get_args(hint), where)
    elif origin is Literal:
        if value not in get_args(hint):
            raise ShapeError(f"{where}: {value!r} is not one of {get_args(hint)}")
    elif hint in (int, float, str, bool, bytes):
        # bool is an int to Python, not to the stub; serde writes every f64 as a float.
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ShapeError(f"{where}: {value!r} is not a {hint.__name__}")
    else:
        raise ShapeError(f"{where}: the checker does not know the declared type {hint!r}")


def _check_union(value: Any, hint: Any, where: str) -> None:
    errors = []
    for arm in get_args(hint):
        try:
            check(value, arm, where)
        except ShapeError as err:
            errors.append(str(err))
        else:
            return
    raise ShapeError(f"{where}: matches no arm of {hint}: " + "; ".join(errors))


def _check_list(value: Any, args: tuple[Any, ...], where: str) -> None:
    if not isinstance(value, list):
        raise ShapeError(f"{where}: {type(value).__name__} where a list is declared")
    for index, element in enumerate(value):
        check(element, args[0], f"{where}[{index}]")


def _check_tuple(value: Any, args: tuple[Any, ...], where: str) -> None:
    if not isinstance(value, tuple) or len(value) != len(args):
        raise ShapeError(f"{where}: {value!r} is not a {len(args)}-tuple")
    for index, (element, arm) in enumerate(zip(value, args, strict=True)):
        check(element, arm, f"{where}[{index}]")


def _check_dict(value: Any, args: tuple[Any, ...], where: str) -> None:
    if not isinstance(value, dict):
        raise ShapeError(f"{where}: {type(value).__name__} where a dict is declared")
    for name, element in value.items():
        check(name, args[0], f"{where} key")
        check(element, args[1], f"{where}[{name!r}]")


_CONTAINERS: dict[Any, Callable[[Any, tuple[Any, ...], str], None]] = {
    list: _check_list,
    tuple: _check_tuple,
    dict: _check_dict,
}


def _check_typeddict(value: Any, hint: Any, where: str) -> None:
    if not isinstance(value, dict):
        raise ShapeError(f"{where}: {type(value).__name__} where {hint.__name__} is declared")
    fields = typing.get_type_hints(hint)
    undeclared = set(value) - set(fields)
    if undeclared:
        raise ShapeError(f"{where}: keys {sorted(undeclared)} are not in {hint.__name__}")
    missing = set(hint.__required_keys__) - set(value)
    if missing:
        raise ShapeError(f"{where}: {hint.__name__} requires {sorted(missing)}")
    for name, element in value.items():
        check(element, fields[name], f"{where}[{name!r}]")


class _Checked:
    """An object of the core whose methods' results are checked."""

    def __init__(self, inner: Any, class_name: str) -> None:
        object.__setattr__(self, "_inner", inner)
        object.__setattr__(self, "_class_name", class_name)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        qualified = f"{self._class_name}.{name}"
        if callable(attribute) and qualified in _stub()[1]:
            return _checking(attribute, qualified)
        return attribute

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)


def _checking(function: Callable[..., Any], name: str) -> Callable[..., Any]:
    hint = declared_return(name)

    @functools.wraps(function)
    def call(*args: Any, **kwargs: Any) -> Any:
        result = function(*args, **kwargs)
        if hint is not None:
            try:
                check(result, hint, f"{name}()")
            except ShapeError as err:
                raise ShapeError(f"{err}\n(the stub, {STUB}, disagrees with the core)") from None
        return result

    return call


def _checked_class(cls: type, name: str) -> Callable[..., Any]:
    @functools.wraps(cls, updated=())
    def construct(*args: Any, **kwargs: Any) -> Any:
        return _Checked(cls(*args, **kwargs), name)

    return construct


@contextmanager
def checked_core() -> Iterator[None]:
    """While active, every dict-returning callable of `phoenix_salt._core` is checked.

    Classes whose objects are dict producers (Engine, Session, ...) are replaced by factories
    of checking wrappers; exception classes and `Config` stay as they are, so `except` and
    `isinstance` checks keep working."""
    _, returns = _stub()
    owners = {name.split(".")[0] for name in returns if "." in name}
    saved: dict[str, Any] = {}
    for name in _core.__all__:
        value = getattr(_core, name)
        if name in owners and isinstance(value, type) and name != "Config":
            saved[name] = value
            setattr(_core, name, _checked_class(value, name))
        elif name in returns and callable(value) and not isinstance(value, type):
            saved[name] = value
            setattr(_core, name, _checking(value, name))
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(_core, name, value)
