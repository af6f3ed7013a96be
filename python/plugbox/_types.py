"""What plugbox returns besides plain values: plugin descriptions and the
answers of a hook."""

import dataclasses
from typing import Any, Generic, List, NamedTuple, Optional, TypeVar, cast

__all__ = ["EntryPoint", "LoadedEntryPoint", "PluginInfo", "HookResult"]

# The type of a hook's values: HookResult[int] for a group whose entry
# points return ints (type checkers only; nothing is checked at run time).
T = TypeVar("T")


class EntryPoint(NamedTuple):
    """One line of a plugin's *.dist-info/entry_points.txt: `name = value`
    under [group]. Those Supervisor.entry_points() and plugins() give are
    bound to their plugin: .plugin names it and .load() returns a callable
    that calls the entry point in the plugin's sandboxed worker."""

    group: str
    name: str
    value: str

    @property
    def plugin(self) -> Optional[str]:
        """The plugin that declares it (None when not bound to one)."""
        bound = getattr(self, "__dict__", None) or {}
        return bound.get("_plugin")

    def load(self) -> "LoadedEntryPoint":
        """A callable proxy: calling it calls this entry point in its
        plugin's worker (started then, not now)."""
        bound = getattr(self, "__dict__", None) or {}
        if "_sup" not in bound:
            raise TypeError("this EntryPoint is not bound to a plugin; "
                            "take it from Supervisor.entry_points() or plugins()")
        return LoadedEntryPoint(bound["_sup"], bound["_plugin"], self)

    @classmethod
    def _bound(cls, sup, plugin, group, name, value):
        ep = _BoundEntryPoint(group, name, value)
        ep.__dict__.update(_sup=sup, _plugin=plugin)
        return ep


class _BoundEntryPoint(EntryPoint):
    """An EntryPoint with its plugin and supervisor in __dict__ (a
    NamedTuple's own instances have none); equal to the plain tuple."""

    def __repr__(self):
        return f"EntryPoint(group={self.group!r}, name={self.name!r}, value={self.value!r}, plugin={self.plugin!r})"


class LoadedEntryPoint:
    """EntryPoint.load()'s answer: call it (or await .acall()) to run the
    entry point `group:name` in its plugin's sandboxed worker. It holds
    no Python object of the plugin: every call crosses the sandbox."""

    __slots__ = ("_sup", "plugin", "entry_point")

    def __init__(self, sup, plugin, entry_point):
        self._sup = sup
        self.plugin = plugin
        self.entry_point = entry_point

    @property
    def function(self) -> str:
        return f"{self.entry_point.group}:{self.entry_point.name}"

    def __call__(self, *args, **kwargs):
        return self._sup.call(self.plugin, self.function, *args, **kwargs)

    async def acall(self, *args, **kwargs):
        return await self._sup.acall(self.plugin, self.function, *args, **kwargs)

    def __repr__(self):
        return f"<plugbox.LoadedEntryPoint {self.function} of plugin {self.plugin!r}>"


@dataclasses.dataclass(frozen=True)
class PluginInfo:
    """A plugin as it describes itself (Supervisor.plugins): read by the
    discovery scan, or with workers=True by its own sandboxed worker.

    name          the directory name
    version       from plugin.toml or the plugin's *.dist-info, as the worker
                  reports it; None when neither says
    layout        "package" or "path"
    exports       the exported function names
    entry_points  [EntryPoint(group, name, value)], sorted as the worker lists them
    priority      `priority` in plugin.toml (0 when absent): hook(order="priority")
    sys_path      the worker's import path (workers=True only)
    layers        the sandbox layers in force (workers=True only)
    error         None, or the plugbox.Error that kept the plugin from being
                  read or its worker from starting (then every other field
                  but name is empty)
    """

    name: str
    version: Optional[str] = None
    layout: str = ""
    exports: List[str] = dataclasses.field(default_factory=list)
    entry_points: List[EntryPoint] = dataclasses.field(default_factory=list)
    sys_path: List[str] = dataclasses.field(default_factory=list, repr=False)
    layers: List[Any] = dataclasses.field(default_factory=list, repr=False)
    error: Optional[BaseException] = None
    priority: int = 0

    @property
    def ok(self):
        return self.error is None

    @classmethod
    def _from_core(cls, name, info, sup=None):
        name = info.get("name", name)
        return cls(
            name=name,
            version=info.get("version") or None,
            layout=info.get("layout", ""),
            exports=list(info.get("exports", [])),
            entry_points=[EntryPoint._bound(sup, name, e["group"], e["name"], e["value"]) if sup is not None
                          else EntryPoint(e["group"], e["name"], e["value"])
                          for e in info.get("entry_points", [])],
            sys_path=list(info.get("sys_path", [])),
            layers=list(info.get("layers", [])),
            priority=int(info.get("priority", 0) or 0),
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


for _cls in (EntryPoint, LoadedEntryPoint, PluginInfo, HookResult):
    _cls.__module__ = "plugbox"
