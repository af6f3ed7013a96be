"""The bytecode compiler of a plugin's cache (plugbox-worker --install compile).

Trusted code, run inside the install worker's walls (worker/compile.c) on
untrusted input: the plugin's sources, bound read-only at the path its own
workers see them at. It compiles every .py file it finds with compile(),
never imports or runs one, and writes checked-hash pycs (PEP 552) beneath
its output tree, the only tree it may write, at the paths a worker looks
for them (worker/bootstrap.py use_cache): the source's absolute path
below the cache root, as sys.pycache_prefix lays them out.

A worker reaches the plugin's files through more than one path: its
dependency directories through their real path, the path layout's own
modules through the plugin directory as named, the package layout's own
modules through the import root (/plugbox/import/NAME). Each file gets a
pyc under every path a worker may import it by. A file that does not
compile (a syntax error, nesting too deep) is skipped, and so is anything
past the limits; the worker compiles those from source, as it would
without a cache. The answer is one line on fd 4: ok TAB COMPILED TAB
SKIPPED, or failed TAB WHY (install.h's conventions).
"""

import importlib.util
import os
import stat
import sys
from importlib import _bootstrap_external as _bx

# Path components below the output tree; supervisor/install_tree.c refuses deeper trees.
_MAX_DEPTH = 30


def _cache_path(out, source_path):
    """Where a worker using cache root `out` looks for source_path's pyc."""
    saved = sys.pycache_prefix
    sys.pycache_prefix = out
    try:
        return importlib.util.cache_from_source(source_path)
    finally:
        sys.pycache_prefix = saved


def _deps_dirs(plugin, name, glue):
    """The package layout's dependency directories, relative, as the worker
    finds them (the glue's own parser: read, never executed)."""
    try:
        manifest = glue._read_manifest(plugin, name)
        deps = manifest.get("deps")
        if deps is None:
            deps, _ = glue._read_init_statics(os.path.join(plugin, "__init__.py"))
    except Exception:
        return []
    return [os.path.normpath(d) for d in deps or [] if not os.path.isabs(d)]


def _under(rel, dirs):
    return any(rel == d or rel.startswith(d + os.sep) for d in dirs)


class _Budget:
    def __init__(self, limits):
        self.files = int(limits.get("files", 20000))
        self.bytes = int(limits.get("bytes", 256 << 20))
        self.file_size = int(limits.get("file_size", 64 << 20))
        self.source_size = int(limits.get("source_size", 16 << 20))
        self.written_files = 0
        self.written_bytes = 0

    def allows(self, size):
        return (self.written_files < self.files and self.written_bytes + size <= self.bytes
                and size <= self.file_size)


def _write(out, path, data, budget, made):
    rel = os.path.relpath(path, out)
    if rel.startswith("..") or rel.count(os.sep) >= _MAX_DEPTH or not budget.allows(len(data)):
        return False
    parent = os.path.dirname(path)
    if parent not in made:
        os.makedirs(parent, exist_ok=True)
        made.add(parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    budget.written_files += 1
    budget.written_bytes += len(data)
    return True


def run(out, plugin, name, aliases, limits, glue):
    """Compile the plugin at `plugin` into `out`; returns the answer line."""
    if not os.path.isdir(plugin) or not os.path.isdir(out):
        return "failed\tthe plugin or the output directory is missing\n"
    real = os.path.realpath(plugin)
    package = os.path.isfile(os.path.join(plugin, "__init__.py"))
    # Everything is reachable through the real path (dependency
    # directories are put on sys.path resolved); the plugin's own files
    # also through these, dependency directories excluded.
    own = [a for a in dict.fromkeys([plugin] + (list(aliases) if package else [])) if a != real]
    deps = _deps_dirs(plugin, name, glue) if own else []
    budget = _Budget(limits)
    compiled = skipped = 0
    made = set()
    for top, dirs, files in os.walk(real):
        rel_top = os.path.relpath(top, real)
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        if rel_top != "." and rel_top.count(os.sep) >= _MAX_DEPTH:
            dirs[:] = []
        for fname in sorted(files):
            if not fname.endswith(".py"):
                continue
            source_path = os.path.join(top, fname)
            rel = os.path.normpath(os.path.join(rel_top, fname))
            try:
                st = os.lstat(source_path)
                if not stat.S_ISREG(st.st_mode) or st.st_size > budget.source_size:
                    skipped += 1
                    continue
                with open(source_path, "rb") as f:
                    source = f.read(budget.source_size + 1)
                code = compile(source, source_path, "exec", dont_inherit=True)
                data = _bx._code_to_hash_pyc(code, importlib.util.source_hash(source), True)
            except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError, OSError):
                skipped += 1
                continue
            del code
            targets = [source_path] + [os.path.join(a, rel) for a in own if not _under(rel, deps)]
            wrote = False
            for target in targets:
                try:
                    wrote = _write(out, _cache_path(out, target), data, budget, made) or wrote
                except OSError:
                    pass
            if wrote:
                compiled += 1
            else:
                skipped += 1
            if budget.written_files >= budget.files:
                return f"ok\t{compiled}\t{skipped}\n"
    return f"ok\t{compiled}\t{skipped}\n"
