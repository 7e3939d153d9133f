"""Names and code objects of callables, read without running user code.

When in-scope code calls something, the sys.monitoring core needs to know whether the callee is
in-scope Python code (it will get its own CALL event) or a library/builtin (recorded as one
EXTERNAL step), and what to call it. Only C-level attributes of exact builtin types are read:
a user callable object's `__call__`, `__name__` or `__getattr__` is never touched.
"""

from __future__ import annotations

from types import (
    BuiltinFunctionType,
    BuiltinMethodType,
    CodeType,
    FunctionType,
    MethodDescriptorType,
    MethodType,
    MethodWrapperType,
    ModuleType,
    WrapperDescriptorType,
)
from typing import Any

_type_qualname = type.__dict__["__qualname__"].__get__
_type_module = type.__dict__["__module__"].__get__
_module_dict = ModuleType.__dict__["__dict__"].__get__
_C_CALLABLES = (
    BuiltinFunctionType,
    BuiltinMethodType,
    MethodDescriptorType,
    WrapperDescriptorType,
    MethodWrapperType,
)


def python_code(callable_: Any) -> CodeType | None:
    """The code object a call to `callable_` starts running, if it is a plain Python function."""
    kind = type(callable_)
    if kind is FunctionType:
        return callable_.__code__
    if kind is MethodType:
        func = callable_.__func__
        if type(func) is FunctionType:
            return func.__code__
    return None


def type_name(cls: type) -> str:
    """`module.QualName` of a class, `int` for builtins, read through `type`'s own descriptors."""
    try:
        qualname = _type_qualname(cls)
        module = _type_module(cls)
    except Exception:
        return "?"
    if module == "builtins" or type(module) is not str:
        return qualname
    return f"{module}.{qualname}"


def callee_name(callable_: Any) -> str:
    """A readable, qualified name for the target of a call."""
    kind = type(callable_)
    try:
        if kind is FunctionType:
            module = callable_.__module__
            qualname = callable_.__qualname__
            return f"{module}.{qualname}" if type(module) is str else qualname
        if kind is MethodType:
            return callee_name(callable_.__func__)
        if kind in _C_CALLABLES:
            qualname = callable_.__qualname__
            owner = callable_.__self__ if kind is BuiltinFunctionType else None
            if type(owner) is ModuleType:
                # The module's own dict, so a module-level __getattr__ (PEP 562) is not involved.
                module = _module_dict(owner).get("__name__")
                if type(module) is str:
                    return f"{module}.{qualname}"
            return qualname
        # issubclass on the real type object uses the C MRO; isinstance(x, type) could read a
        # user-defined __class__.
        if issubclass(kind, type):
            return type_name(callable_)
    except Exception:
        return "?"
    return type_name(kind)
