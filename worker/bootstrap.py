"""Worker-side glue, run inside the sandbox once every layer is in place.

Everything here reads the plugin directory, which is untrusted: the layout,
`__deps_dir__` (parsed from the source text, never executed), plugin.toml
(tomllib) and `*.dist-info` metadata. The C side calls setup() once
(worker/main.c), then resolve() for a call's function (worker/calls.c keeps
what it found in _exported) and describe() for its exception.
"""

# Only modules that are frozen or already loaded by start-up: every other
# import here is paid by every worker start (`re` ~8 ms, `ast` ~10 ms,
# `importlib.metadata` ~40 ms on the CI's VM against ~8 ms for the whole of
# `python3 -I -S -c pass`), so the rest are imported where a plugin needs
# them (ast for __deps_dir__, importlib.metadata for dist-info, traceback
# for an error).
import importlib
import os
import sys
_MANIFEST_KEYS = {"name", "version", "description", "deps", "exports", "permissions", "priority", "preload"}
# Metadata files larger than this are refused unread: parsing them is the
# same job in a worker and in the discovery scan (scan()), where one
# plugin's megabytes must not stall the listing of every other.
_METADATA_MAX = 1 << 20
_DIST_INFO_MAX = 4 << 20
_INIT_MAX = 8 << 20
_PRIORITY_RANGE = (-1000000, 1000000)


def _is_ident(s):
    """[A-Za-z_][A-Za-z0-9_]*, without importing re."""
    return isinstance(s, str) and s.isascii() and s.isidentifier()


def _is_module_path(s):
    return isinstance(s, str) and all(_is_ident(part) for part in s.split("."))


class ConfigError(Exception):
    """The plugin's layout or metadata is invalid."""


class NotFound(Exception):
    """The requested function does not exist in this plugin."""


_state = {}


def _inside(base, path):
    base = os.path.realpath(base)
    path = os.path.realpath(path)
    return path == base or path.startswith(base + os.sep)


def _read_init_statics(init_path):
    """Return (__deps_dir__, __version__) assigned as literals at top level."""
    with open(init_path, "rb") as f:
        source = f.read(_INIT_MAX + 1)
    if len(source) > _INIT_MAX:
        raise ConfigError(f"{init_path}: larger than {_INIT_MAX} bytes")
    if b"__deps_dir__" not in source and b"__version__" not in source:
        return None, None
    import ast
    try:
        tree = ast.parse(source, filename=init_path)
    except SyntaxError as e:
        raise ConfigError(f"{init_path}:{e.lineno}: cannot parse: {e.msg}") from None
    except (RecursionError, MemoryError):
        raise ConfigError(f"{init_path}: nested too deeply to parse") from None
    deps = version = None
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if not isinstance(target, ast.Name):
                continue
            if target.id == "__deps_dir__":
                try:
                    deps = ast.literal_eval(value)
                except ValueError:
                    raise ConfigError(
                        f"{init_path}:{node.lineno}: __deps_dir__ must be a string "
                        "or a list of strings written literally") from None
                deps = _string_list(deps, f"{init_path}:{node.lineno}: __deps_dir__")
            elif target.id == "__version__" and isinstance(value, ast.Constant) \
                    and isinstance(value.value, str):
                version = value.value
    return deps, version


def _string_list(value, what):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) and v for v in value):
        raise ConfigError(f"{what} must be a string or a list of strings")
    return list(value)


def _read_manifest(plugin_dir, name):
    path = os.path.join(plugin_dir, "plugin.toml")
    if not os.path.isfile(path):
        return {}
    import tomllib
    with open(path, "rb") as f:
        data = f.read(_METADATA_MAX + 1)
    if len(data) > _METADATA_MAX:
        raise ConfigError(f"{path}: larger than {_METADATA_MAX} bytes")
    try:
        manifest = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: {e}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
    unknown = sorted(set(manifest) - _MANIFEST_KEYS)
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r} "
                          f"(known: {', '.join(sorted(_MANIFEST_KEYS))})")
    if "name" in manifest and manifest["name"] != name:
        raise ConfigError(f"{path}: name {manifest['name']!r} differs from the "
                          f"directory name {name!r}")
    if "version" in manifest and not isinstance(manifest["version"], str):
        raise ConfigError(f"{path}: version must be a string")
    if "priority" in manifest:
        prio = manifest["priority"]
        if type(prio) is not int or not _PRIORITY_RANGE[0] <= prio <= _PRIORITY_RANGE[1]:
            raise ConfigError(f"{path}: priority must be an integer from {_PRIORITY_RANGE[0]} "
                              f"to {_PRIORITY_RANGE[1]}")
    if "deps" in manifest:
        manifest["deps"] = _string_list(manifest["deps"], f"{path}: deps")
    if "preload" in manifest:
        # Modules a zygote imports before it forks workers (--spawn zygote).
        manifest["preload"] = _string_list(manifest["preload"], f"{path}: preload")
        if not all(_is_module_path(m) for m in manifest["preload"]):
            raise ConfigError(f"{path}: preload must list module names")
    exports = manifest.get("exports")
    if exports is not None:
        if isinstance(exports, list):
            if not all(isinstance(e, str) and _is_ident(e) for e in exports):
                raise ConfigError(f"{path}: exports must list identifiers")
        elif isinstance(exports, dict):
            for key, ref in exports.items():
                if not isinstance(ref, str) or ":" not in ref:
                    raise ConfigError(f"{path}: exports.{key} must be 'module.path:attr'")
        else:
            raise ConfigError(f"{path}: exports must be a list or a table")
    return manifest


def _dist_infos(root):
    try:
        entries = sorted(os.listdir(root))
    except OSError:
        return []
    return [os.path.join(root, e) for e in entries
            if e.endswith(".dist-info") and os.path.isdir(os.path.join(root, e))]


def _check_dist_info(info):
    """Refuse a dist-info whose files importlib.metadata would read whole
    (METADATA, entry_points.txt) when they are too large to be metadata."""
    for fname in ("METADATA", "PKG-INFO", "entry_points.txt"):
        try:
            size = os.stat(os.path.join(info, fname)).st_size
        except OSError:
            continue
        if size > _DIST_INFO_MAX:
            raise ConfigError(f"{info}/{fname}: larger than {_DIST_INFO_MAX} bytes")


def read_static(name, plugin_dir, max_entry_points):
    """What a plugin says about itself without running any of it: its
    layout, version, exports, entry points, dependency directories and
    priority, from plugin.toml, __init__.py's literals and *.dist-info.
    Raises ConfigError. Used by setup() in a worker and by scan() in the
    discovery helper, so both read a plugin the same way."""
    if not os.path.isdir(plugin_dir):
        raise ConfigError(f"plugin directory {plugin_dir} is not a directory")
    manifest = _read_manifest(plugin_dir, name)
    init_path = os.path.join(plugin_dir, "__init__.py")
    version = manifest.get("version")
    entry_points = []
    if os.path.isfile(init_path):
        layout = "package"
        deps, init_version = _read_init_statics(init_path)
        if "deps" in manifest:
            deps = manifest["deps"]
        version = version or init_version
    else:
        layout = "path"
        deps = manifest.get("deps")
        infos = _dist_infos(plugin_dir)
        if infos:
            from importlib.metadata import PathDistribution
            from pathlib import Path
        for info in infos:
            _check_dist_info(info)
            dist = PathDistribution(Path(info))
            if version is None:
                version = dist.version
            for ep in dist.entry_points:
                if len(entry_points) == max_entry_points:
                    raise ConfigError(f"plugin {name!r} declares more than {max_entry_points} entry points "
                                      "(plugbox's limit)")
                entry_points.append((ep.group, ep.name, ep.value))
    if version is not None and not isinstance(version, str):
        version = None
    return {
        "layout": layout,
        "version": version or "",
        "exports": sorted(manifest.get("exports") or []),
        "entry_points": entry_points,
        "deps": deps,
        "priority": manifest.get("priority", 0),
        "_exports": manifest.get("exports") or [],
        "preload": manifest.get("preload") or [],
    }


def setup(name, plugin_dir, view_dir, stdlib_paths, max_entry_points):
    """Lay out sys.path for this plugin and describe it (for Hello), with
    at most max_entry_points entry points (protocol.h)."""
    # First, while sys.path is still the standard library alone: the plugin's
    # logging goes to the supervisor from its first import on, and `logging`
    # is the stdlib's even if a dependency directory ships its own.
    import plugbox
    plugbox._forward_logging(stdlib_paths)
    static = read_static(name, plugin_dir, max_entry_points)
    layout, deps = static["layout"], static["deps"]
    if layout == "package":
        root = view_dir
        if sorted(os.listdir(view_dir)) != [name]:
            raise ConfigError(f"import root {view_dir} must hold only {name}")
    else:
        root = plugin_dir
    dep_paths = []
    for d in deps or []:
        if os.path.isabs(d):
            raise ConfigError(f"deps directory {d!r} escapes the plugin directory "
                              "(it must be relative to it)")
        full = os.path.normpath(os.path.join(plugin_dir, d))
        if not _inside(plugin_dir, full):
            raise ConfigError(f"deps directory {d!r} escapes the plugin directory")
        if not os.path.isdir(full):
            raise ConfigError(f"deps directory {d!r} does not exist")
        dep_paths.append(os.path.realpath(full))

    sys.path[:] = [root] + dep_paths + list(stdlib_paths)
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()

    _state.update(name=name, layout=layout, plugin_dir=os.path.realpath(plugin_dir),
                  exports=static["_exports"], entry_points=static["entry_points"], preload=static["preload"])
    return {
        "layout": layout,
        "version": static["version"],
        "exports": static["exports"],
        "entry_points": static["entry_points"],
        "sys_path": list(sys.path),
        "priority": static["priority"],
    }


def scan_one(name, plugin_dir, max_entry_points):
    """The discovery helper's view of one plugin (plugbox-worker --install
    scan): what Hello would say, without sys.path or an import. Any
    failure is the plugin's, as a ConfigError: the scan goes on to the
    next plugin."""
    try:
        static = read_static(name, plugin_dir, max_entry_points)
    except ConfigError:
        raise
    except (RecursionError, MemoryError) as e:
        raise ConfigError(f"plugin {name!r}: its metadata is too large or nested too deeply "
                          f"({type(e).__name__})") from None
    except Exception as e:   # a malformed dist-info, an unreadable file...
        raise ConfigError(f"plugin {name!r}: {type(e).__name__}: {e}") from None
    return {
        "layout": static["layout"],
        "version": static["version"],
        "exports": static["exports"],
        "entry_points": static["entry_points"],
        "sys_path": [],
        "priority": static["priority"],
    }


def prune_kwargs(fn, kwargs):
    """The keyword arguments fn's signature accepts (pluggy's rule for hook
    implementations): all of them if it takes **kwargs or has no signature
    Python can read, else only those it names."""
    import inspect
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return kwargs
    names = set()
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            return kwargs
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            names.add(p.name)
    return {k: v for k, v in kwargs.items() if k in names}


def _owned_module(module):
    """True if `module` is the plugin's own code (not a dependency, not stdlib)."""
    top = module.split(".")[0]
    if _state["layout"] == "package":
        return top == _state["name"]
    from importlib.util import find_spec
    spec = find_spec(top)
    if spec is None:
        return False
    places = list(spec.submodule_search_locations or []) or [spec.origin or ""]
    return all(p and _inside(_state["plugin_dir"], p) for p in places)


def _load_ref(ref, what):
    module, _, attrs = ref.partition(":")
    if not _is_module_path(module) or not all(_is_ident(a) for a in attrs.split(".")):
        raise NotFound(f"{what}: {ref!r} is not of the form module.path:attr")
    if not _owned_module(module):
        raise NotFound(f"{what}: module {module!r} is not part of plugin {_state['name']!r}")
    try:
        obj = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and (module == e.name or module.startswith(e.name + ".")):
            raise NotFound(f"{what}: no module {module!r} in plugin {_state['name']!r}") from None
        raise
    for attr in attrs.split("."):
        try:
            obj = getattr(obj, attr)
        except AttributeError:
            raise NotFound(f"{what}: {module!r} has no attribute {attrs!r}") from None
    if not callable(obj):
        raise NotFound(f"{what}: {ref!r} is not callable")
    return obj


def _imported(name):
    """importlib.import_module(name) for a top-level name, without its
    Python frames when the module is there and initialised (every call
    resolves through this: it is on the hot path)."""
    module = sys.modules.get(name)
    if module is None or getattr(getattr(module, "__spec__", None), "_initializing", False):
        return importlib.import_module(name)
    return module


def _edit_distance(a, b):
    """Optimal string alignment distance: a swap of neighbours is one edit."""
    two_ago, prev = None, list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], two_ago[j - 2] + 1)
        two_ago, prev = prev, cur
    return prev[-1]


def _did_you_mean(typed, candidates):
    """" (did you mean 'NAME'?)" for the candidate nearest a misspelt name,
    as the supervisor's suggest.c judges it, or "". Only names of the safe
    characters are offered (the supervisor checks that again: this process
    runs the plugin's code)."""
    limit = 1 if len(typed) <= 5 else len(typed) // 3
    best = None
    for name in sorted({c for c in candidates if isinstance(c, str) and c.isascii()
                        and c.replace("_", "a").replace(".", "a").replace("-", "a").replace(":", "a").isalnum()
                        and len(c) <= 256}):
        d = _edit_distance(typed, name)
        if 0 < d <= limit and (best is None or d < best[0]):
            best = (d, name)
    return f" (did you mean {best[1]!r}?)" if best else ""


def resolve(function):
    if function == WARM:
        return _warm
    name = _state["name"]
    if ":" in function:
        group, _, ep_name = function.partition(":")
        groups = {g for g, _, _ in _state["entry_points"]}
        if group in groups:
            for g, n, value in _state["entry_points"]:
                if g == group and n == ep_name:
                    return _load_ref(value, f"entry point {function!r}")
            others = [f"{g}:{n}" for g, n, _ in _state["entry_points"] if g == group]
            raise NotFound(f"plugin {name!r} has no entry point {function!r}"
                           + _did_you_mean(function, others))
        return _load_ref(function, f"function {function!r}")
    exports = _state["exports"]
    if isinstance(exports, dict) and function in exports:
        return _load_ref(exports[function], f"export {function!r}")
    if _state["layout"] == "package":
        package = _imported(name)
        if isinstance(exports, list) and function in exports:
            obj = getattr(package, function, None)
            if not callable(obj):
                raise NotFound(f"plugin {name!r} exports {function!r} in plugin.toml "
                               "but has no such callable")
            return obj
    import plugbox
    if function in plugbox._exports:
        obj = _exported[function] = plugbox._exports[function]
        _exported[None] = plugbox
        return obj
    known = list(exports) + list(plugbox._exports)
    hint = _did_you_mean(function, known)
    raise NotFound(f"plugin {name!r} has no function {function!r}" + (hint or " (export it with "
                   "@plugbox.export or plugin.toml, or call it as module.path:attr)"))


def _plugin_modules():
    """The plugin's own modules its calls will need: the package, and the
    modules its exports and entry points name."""
    modules = []
    if _state["layout"] == "package":
        modules.append(_state["name"])
    exports = _state["exports"]
    refs = list(exports.values()) if isinstance(exports, dict) else []
    refs += [value for _, _, value in _state["entry_points"]]
    for ref in refs:
        module = str(ref).partition(":")[0]
        if _is_module_path(module) and _owned_module(module):
            modules.append(module)
    return modules


def empty_scratch(path):
    """A zygote's child under @fresh-per-call: remove everything in the
    scratch directory it shares with its zygote (worker/zygote.c)."""
    import shutil
    for entry in os.scandir(path):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)


def zygote_preload():
    """What a zygote imports before it forks (worker/zygote.c): the plugin
    and the modules plugin.toml lists in `preload`. Errors are left for the
    call that needs the module, as in preload()."""
    preload()
    for module in _state.get("preload", []):
        try:
            importlib.import_module(module)
        except Exception:
            pass


def preload():
    """Import the plugin now, while opening files is still allowed: a policy
    with @after-start rules (strict) forbids it once the plugin is ready.
    Errors are left for the call that needs the module to raise again."""
    # describe() needs traceback, which it could not import later.
    import traceback  # noqa: F401
    for module in _plugin_modules():
        try:
            importlib.import_module(module)
        except Exception:
            pass


# rehearse(): a package of the standard library with an empty __init__.py
# (read_static reads it as a plugin without a manifest or literals), the
# body of a trivial plugin, and how many times: CPython 3.11 quickens a
# function at its 8th call and specialises its instructions over the next.
_REHEARSAL_PACKAGE = "urllib"
_REHEARSAL_EXPORT = "_plugbox_rehearsal"
_REHEARSAL_BODY = f"""
import plugbox
import sys


@plugbox.export
def {_REHEARSAL_EXPORT}(x):
    return x
"""
_REHEARSALS = 10


def rehearse(stdlib_paths):
    """Run, in the fork-server, the steps every child takes to start that
    do not depend on its plugin: read_static(), a new sys.path with fresh
    path finders, an import through them compiled from source (as a
    plugin's is without a bytecode cache), a plugin's first statements;
    on a package of the standard library and a body written here (no
    plugin code: the fork-server never holds any). Then undo them. A child
    then finds this code quickened and specialised and the interpreter's
    caches grown, and writes to fewer of the pages it shares with the
    fork-server: CPython 3.11 writes to a function's code object at each
    of its first calls and to a shared page at every first-time cache
    fill, a 4 KiB copy per child each time."""
    import plugbox
    saved_path, saved_meta = list(sys.path), list(sys.meta_path)
    tag = sys.implementation.cache_tag
    name = _REHEARSAL_PACKAGE
    body = compile(_REHEARSAL_BODY, "<plugbox rehearsal>", "exec")
    try:
        # No cache tag: importlib then compiles the source instead of
        # reading the standard library's pyc.
        sys.implementation.cache_tag = None
        for _ in range(_REHEARSALS):
            read_static(name, os.path.join(stdlib_paths[0], name), 1)
            sys.path[:] = list(stdlib_paths)
            sys.path_importer_cache.clear()
            importlib.invalidate_caches()
            exec(body, vars(importlib.import_module(name)))
            del sys.modules[name]
    finally:
        sys.implementation.cache_tag = tag
        plugbox._exports.pop(_REHEARSAL_EXPORT, None)
        sys.modules.pop(name, None)
        sys.path[:] = saved_path
        sys.meta_path[:] = saved_meta
        sys.path_importer_cache.clear()
        importlib.invalidate_caches()


# The function name the supervisor calls to warm a worker (pb_supervisor_start,
# pb_supervisor_warm, serve --eager): not an identifier nor module:attr, so
# no export or entry point can have it.
WARM = "<warm>"


def _warm():
    """Import what the plugin's calls will need, so that the first call does
    not pay for it; an import error is the plugin's and raises here."""
    for module in _plugin_modules():
        importlib.import_module(module)


# Functions resolve() last found in plugbox's export registry. What decides
# the route there (_state, the package being imported) does not change, so
# while the registry still maps the name to the same object, that object is
# what resolve() would return: worker/calls.c looks here first and calls
# the function itself (and flushes sys.stdout and sys.stderr before it
# writes the answers of a batch of calls).
_exported = {}   # function name -> object; None -> the plugbox module


def describe(exc):
    """(type name, message, traceback text) of an exception, for the host."""
    cls = type(exc)
    module = getattr(cls, "__module__", "builtins")
    qualname = getattr(cls, "__qualname__", cls.__name__)
    type_name = qualname if module in ("builtins", "__main__") else f"{module}.{qualname}"
    try:
        message = str(exc)
    except Exception:
        message = f"<unprintable {qualname}>"
    try:
        import traceback
        tb = "".join(traceback.format_exception(exc))
    except Exception:
        tb = ""
    return type_name, message, tb


def use_cache(cache_dir, name, plugin_dir, view_dir):
    """Serve the plugin's modules from its bytecode cache.

    cache_dir is this plugin's cache, read-only here (bound so, or under
    Landlock) and written only by plugbox's sandboxed compiler, in the
    layout of sys.pycache_prefix. sys.pycache_prefix itself is not set: it
    would move the standard library's lookups too, and the standard
    library would then be compiled from source at every start (Debian's
    pycs sit in its __pycache__ directories). Instead only sources below
    the plugin's own paths map into the cache; everything else is looked
    up as before. sys.dont_write_bytecode stays true: nothing is written.

    From the cache, only checked-hash pycs (PEP 552) are used, each
    validated against its source's hash as it is imported: an edited
    source is never served stale bytecode, and a pyc planted with another
    mode or a wrong hash is ignored. A pyc whose header matches but whose
    body does not load is ignored too. Each of these falls back to
    compiling the source, as a worker without a cache does.
    """
    import _imp
    from importlib import _bootstrap_external as bx

    if not os.path.isdir(cache_dir):
        return False
    prefix = os.path.join(cache_dir, "")
    roots = tuple({os.path.join(p, "") for p in
                   (plugin_dir, os.path.realpath(plugin_dir), os.path.join(view_dir, name))})
    plain_cache_from_source = bx.cache_from_source
    plain_classify = bx._classify_pyc
    plain_compile = bx._compile_bytecode

    def cache_from_source(path, debug_override=None, *, optimization=None):
        where = plain_cache_from_source(path, debug_override, optimization=optimization)
        path = os.fspath(path)
        if not path.startswith(roots):
            return where
        pycache, filename = os.path.split(where)
        return os.path.join(cache_dir, os.path.dirname(pycache).lstrip(os.sep), filename)

    def from_cache(details):
        return str(details.get("path") or "").startswith(prefix)

    def _classify_pyc(data, name, exc_details):
        flags = plain_classify(data, name, exc_details)
        if flags != 0b11 and from_cache(exc_details):
            raise ImportError(f"{name}: the cache holds no checked-hash pyc for it", **exc_details)
        return flags

    def _compile_bytecode(data, name=None, bytecode_path=None, source_path=None):
        try:
            return plain_compile(data, name, bytecode_path, source_path)
        except (ImportError, ValueError, EOFError, TypeError):
            if not source_path or not from_cache({"path": bytecode_path}):
                raise
        with open(source_path, "rb") as f:
            return compile(f.read(), source_path, "exec", dont_inherit=True)

    if _imp.check_hash_based_pycs == "never":
        _imp.check_hash_based_pycs = "default"
    bx.cache_from_source = cache_from_source
    bx._classify_pyc = _classify_pyc
    bx._compile_bytecode = _compile_bytecode
    return True
