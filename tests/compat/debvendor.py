"""Vendoring Debian's Python packages into a plugin's deps/ at test time.

A plugin author who takes a library from Debian's archive copies its
directory out of /usr/lib/python3/dist-packages into the plugin's deps/,
together with the Python packages it depends on (pandas needs dateutil and
pytz, requests needs urllib3, idna, certifi and charset_normalizer). The
C libraries those packages link against (libopenblas, libxslt, libssl) are
not copied: apt installs them system-wide, and the worker's view of /usr
holds them.

This module does that from dpkg's own records, so nothing here names a file
of a package: `python_closure(["python3-pandas"])` follows the Depends fields
through every installed package that owns files under dist-packages, and
`vendor()` links (or, across file systems, copies) their top-level entries.
Nothing vendored is ever committed: the tests build their plugins under
PB_TEST_BUILDDIR/tmp.
"""

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

DIST_PACKAGES = Path("/usr/lib/python3/dist-packages")


@functools.lru_cache(maxsize=None)
def _dpkg_table():
    """{package: (installed, depends text)} and {virtual name: [providers]}."""
    try:
        out = subprocess.run(
            ["dpkg-query", "-W", "-f=${Package}\t${db:Status-Abbrev}\t${Depends}\t${Provides}\n"],
            capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}, {}
    packages, provides = {}, {}
    for line in out.splitlines():
        name, status, depends, provided = (line.split("\t") + ["", "", ""])[:4]
        installed = status.startswith("ii")
        packages[name] = (installed, depends)
        if installed:
            for item in filter(None, (p.strip() for p in provided.split(","))):
                provides.setdefault(item.split()[0], []).append(name)
    return packages, provides


def installed(package):
    """True if the Debian package is installed (dpkg status 'ii')."""
    return _dpkg_table()[0].get(package, (False, ""))[0]


def missing(packages):
    """The packages of the list that are not installed."""
    return [p for p in packages if not installed(p)]


@functools.lru_cache(maxsize=None)
def top_entries(package):
    """Names directly under dist-packages that the package owns
    (`numpy`, `numpy-1.24.2.egg-info`, `_cffi_backend.cpython-311-....so`)."""
    out = subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True).stdout
    prefix = str(DIST_PACKAGES) + "/"
    names = set()
    for path in out.splitlines():
        if path.startswith(prefix):
            names.add(path[len(prefix):].split("/", 1)[0])
    return frozenset(names)


def _resolve(alternatives):
    """The installed package that satisfies 'a | b (>= 1) | virtual'."""
    packages, provides = _dpkg_table()
    for alt in alternatives.split("|"):
        name = re.sub(r"\(.*?\)", "", alt).strip().split(":")[0]
        if packages.get(name, (False, ""))[0]:
            return name
        for provider in provides.get(name, []):
            return provider
    return None


def python_closure(roots):
    """The roots and every installed package they depend on, directly or
    not, that owns something in dist-packages, in a stable order."""
    packages, _ = _dpkg_table()
    seen, order, todo = set(), [], list(roots)
    while todo:
        name = todo.pop(0)
        if name in seen:
            continue
        seen.add(name)
        if not top_entries(name) and name not in roots:
            continue    # a C library or python3 itself: apt installs it system-wide
        order.append(name)
        depends = packages.get(name, (False, ""))[1]
        for clause in filter(None, (c.strip() for c in depends.split(","))):
            dep = _resolve(clause)
            if dep and dep not in seen:
                todo.append(dep)
    return order


def _link_tree(src, dst):
    """Hard links where the file system allows them (the build tree and
    /usr are usually one file system), copies otherwise."""
    def link_or_copy(s, d):
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)
    if src.is_dir():
        shutil.copytree(src, dst, symlinks=True, copy_function=link_or_copy, dirs_exist_ok=True)
    else:
        link_or_copy(src, dst)


def vendor(roots, deps_dir):
    """Copy the roots and their Python dependencies into deps_dir, as a
    plugin author would. Returns the Debian packages vendored."""
    deps_dir = Path(deps_dir)
    deps_dir.mkdir(parents=True, exist_ok=True)
    packages = python_closure(roots)
    for package in packages:
        for entry in sorted(top_entries(package)):
            src = DIST_PACKAGES / entry
            if src.exists() and not (deps_dir / entry).exists():
                _link_tree(src, deps_dir / entry)
    return packages
