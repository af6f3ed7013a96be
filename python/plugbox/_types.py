"""What plugbox returns besides plain values: plugin descriptions and the
answers of a hook."""

import dataclasses
from typing import Any, Generic, List, NamedTuple, Optional, TypeVar, cast

__all__ = ["EntryPoint", "PluginInfo", "HookResult"]

# The type of a hook's values: HookResult[int] for a group whose entry
# points return ints (type checkers only; nothing is checked at run time).
T = TypeVar("T")


class EntryPoint(NamedTuple):
    """One line of a plugin's *.dist-info/entry_points.txt: `name = value`
    under [group]."""

    group: str
    name: str
    value: str


@dataclasses.dataclass(frozen=True)
class PluginInfo:
    """A plugin as its own sandboxed worker describes it (Supervisor.plugins).

    name          the directory name
    version       from plugin.toml or the plugin's *.dist-info, as the worker
                  reports it; None when neither says
    layout        "package" or "path"
    exports       the exported function names
    entry_points  [EntryPoint(group, name, value)], sorted as the worker lists them
    sys_path      the worker's import path
    layers        the sandbox layers in force
    error         None, or the plugbox.Error that kept the worker from starting
                  (then every other field but name is empty)
    """

    name: str
    version: Optional[str] = None
    layout: str = ""
    exports: List[str] = dataclasses.field(default_factory=list)
    entry_points: List[EntryPoint] = dataclasses.field(default_factory=list)
    sys_path: List[str] = dataclasses.field(default_factory=list, repr=False)
    layers: List[Any] = dataclasses.field(default_factory=list, repr=False)
    error: Optional[BaseException] = None

    @property
    def ok(self):
        return self.error is None

    @classmethod
    def _from_core(cls, name, info):
        return cls(
            name=info.get("name", name),
            version=info.get("version") or None,
            layout=info.get("layout", ""),
            exports=list(info.get("exports", [])),
            entry_points=[EntryPoint(e["group"], e["name"], e["value"])
                          for e in info.get("entry_points", [])],
            sys_path=list(info.get("sys_path", [])),
            layers=list(info.get("layers", [])),
        )


@dataclasses.dataclass(frozen=True)
class HookResult(Generic[T]):
    """One answer of Supervisor.hook: the entry point `name` of `plugin`
    returned `value`, or failed with `error` (a plugbox.Error). A plugin
    that could not start is one answer with name "" and its error.
    Generic in the value's type: List[HookResult[str]] for a group whose
    entry points return str."""

    plugin: str
    name: str
    value: Optional[T] = None
    error: Optional[BaseException] = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def result(self) -> T:
        """The value, or raise the error."""
        if self.error is not None:
            raise self.error
        return cast(T, self.value)   # None when T admits it


for _cls in (EntryPoint, PluginInfo, HookResult):
    _cls.__module__ = "plugbox"
