"""The unpacker of `plugbox install`, run by `plugbox-worker --install` inside
the install sandbox (worker/install.c), after every layer is in place.

Everything it reads is untrusted: a wheel (on a descriptor opened read-only by
the supervisor) or a plugin directory (bound read-only). It may write only
below its staging directory, which becomes PLUGINS/NAME once the supervisor
has checked the tree again. It uses the standard library only and never
imports or runs anything from the input.

run() returns the text the supervisor reads (supervisor/install.h): probe
lines (tests only), then one of ok / version / refused / failed. Sizes and
counts are the supervisor's limits, enforced here by counting what is really
read and written, never by trusting a header.
"""

import base64
import binascii
import csv
import email.parser
import email.policy
import errno
import hashlib
import io
import os
import re
import stat
import zipfile
import zlib

_DIST_NAME = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])$", re.IGNORECASE)
_PLUGIN_NAME = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
# PEP 440, as the packaging project writes it (VERSION_PATTERN).
_VERSION = re.compile(r"""^v?(?:(?:[0-9]+!)?[0-9]+(?:\.[0-9]+)*
    (?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?[0-9]*)?
    (?:-[0-9]+|[-_.]?(?:post|rev|r)[-_.]?[0-9]*)?
    (?:[-_.]?dev[-_.]?[0-9]*)?)(?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?$""", re.VERBOSE | re.IGNORECASE)
_WHEEL_VERSION = re.compile(r"^1\.[0-9]{1,4}$")
_HASHES = ("sha256", "sha384", "sha512")
_DATA_SCHEMES = {"purelib": True, "platlib": True, "scripts": False, "headers": False, "data": False}

_METADATA_MAX = 4 << 20       # METADATA, WHEEL, plugin.toml, __init__.py read into memory
_RECORD_MAX = 16 << 20
_CENTRAL_DIRECTORY_MAX = 8 << 20   # before zipfile builds an object per entry
_CHUNK = 1 << 16


class Refused(Exception):
    """The input is bad: the message says what and where (exit 2)."""


def _shown(text, limit=200):
    """A name as it may appear in the one-line message: no control characters."""
    text = "".join("?" if ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 or 0xd800 <= ord(c) < 0xe000 else c
                   for c in str(text))
    return text if len(text) <= limit else text[:limit] + "..."


def _field(text, limit=900):
    return _shown(text, limit).replace("\t", " ")


class Limits:
    def __init__(self, given):
        self.bytes = given["bytes"]
        self.files = given["files"]
        self.file_size = given["file_size"]
        self.ratio = given["ratio"]
        self.ratio_floor = given["ratio_floor"]
        self.depth = given["depth"]


class Staging:
    """The one tree the unpacker writes. Every byte and every file is counted
    here, as it is written: the limits hold whatever an archive declares.
    Paths are relative to the staging descriptor and were checked before
    (no '..', no absolute path), and nothing here creates a symlink, so no
    path can lead out of it."""

    def __init__(self, path, limits):
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self.limits = limits
        self.dirs = set()
        self.files = 0
        self.bytes = 0

    def mkdirs(self, parts):
        for i in range(1, len(parts) + 1):
            rel = "/".join(parts[:i])
            if rel in self.dirs:
                continue
            if len(self.dirs) >= self.limits.files:
                raise Refused(f"more than {self.limits.files} directories")
            os.mkdir(rel, 0o755, dir_fd=self.fd)
            self.dirs.add(rel)

    def copy(self, src, parts, what, hasher=None):
        """Write src (a binary reader) to parts; returns the size written."""
        self.files += 1
        if self.files > self.limits.files:
            raise Refused(f"more than {self.limits.files} files")
        self.mkdirs(parts[:-1])
        fd = os.open("/".join(parts), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644, dir_fd=self.fd)
        size = 0
        try:
            while True:
                chunk = src.read(_CHUNK)
                if not chunk:
                    break
                size += len(chunk)
                self.bytes += len(chunk)
                if size > self.limits.file_size:
                    raise Refused(f"{what}: larger than {self.limits.file_size} bytes")
                if self.bytes > self.limits.bytes:
                    raise Refused(f"{what}: the plugin grows past {self.limits.bytes} bytes in all")
                if hasher is not None:
                    hasher.update(chunk)
                view = memoryview(chunk)
                while view:
                    try:
                        n = os.write(fd, view)
                    except OSError as e:
                        if e.errno == errno.EFBIG:
                            raise Refused(f"{what}: larger than the file-size limit") from None
                        raise
                    view = view[n:]
        finally:
            os.close(fd)
        return size

    def write_bytes(self, parts, data, what):
        return self.copy(io.BytesIO(data), parts, what)


def _check_component(part, what):
    if part in ("", ".", ".."):
        raise Refused(f"{what}: its path leaves the plugin directory or has an empty component")
    if len(part.encode("utf-8", "surrogateescape")) > 255:
        raise Refused(f"{what}: a path component is longer than 255 bytes")


def _member_path(raw, limits):
    """(parts, is_dir) of an archive member's name, or Refused."""
    what = f"member '{_shown(raw)}'"
    if any(ord(c) < 0x20 or ord(c) == 0x7f for c in raw):
        raise Refused(f"{what}: control characters in its name")
    if raw.startswith("/"):
        raise Refused(f"{what}: an absolute path")
    if "\\" in raw:
        raise Refused(f"{what}: a backslash in its name")
    if len(raw.encode("utf-8", "surrogateescape")) > 1024:
        raise Refused(f"{what}: a name longer than 1024 bytes")
    is_dir = raw.endswith("/")
    parts = tuple((raw[:-1] if is_dir else raw).split("/"))
    for part in parts:
        _check_component(part, what)
    if len(parts) > limits.depth:
        raise Refused(f"{what}: deeper than {limits.depth} directories")
    return parts, is_dir


def _member_type(info, what):
    kind = stat.S_IFMT(info.external_attr >> 16)
    is_dir = info.filename.endswith("/")
    if kind == stat.S_IFLNK:
        raise Refused(f"{what}: a symlink")
    names = {stat.S_IFCHR: "character device", stat.S_IFBLK: "block device", stat.S_IFIFO: "fifo",
             stat.S_IFSOCK: "socket"}
    if kind in names:
        raise Refused(f"{what}: a {names[kind]}")
    if kind not in (0, stat.S_IFDIR if is_dir else stat.S_IFREG):
        raise Refused(f"{what}: its type bits 0o{kind:o} do not match its name")


class Member:
    def __init__(self, info, parts, is_dir):
        self.info = info
        self.raw = info.filename
        self.parts = parts
        self.is_dir = is_dir
        self.target = None       # where it is installed, or None: skipped
        self.hash = None         # (algorithm, digest) from RECORD

    @property
    def what(self):
        return f"member '{_shown(self.raw)}'"


def _read_member(zf, member, limit):
    if member.info.file_size > limit:
        raise Refused(f"{member.what}: larger than {limit} bytes")
    with zf.open(member.info) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise Refused(f"{member.what}: larger than {limit} bytes")
    return data


def _headers(data, what):
    return email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(data)


def _one_header(headers, key, what):
    values = headers.get_all(key) or []
    if len(values) != 1:
        raise Refused(f"{what}: {'no' if not values else 'more than one'} {key} field")
    value = str(values[0]).strip()
    if any(ord(c) < 0x20 or ord(c) == 0x7f for c in value):
        raise Refused(f"{what}: {key} has control characters")
    return value


def _normalize(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _parse_record(data, what):
    try:
        text = data.decode("utf-8")
        rows = list(csv.reader(io.StringIO(text, newline="")))
    except (UnicodeDecodeError, csv.Error) as e:
        raise Refused(f"{what}: not a CSV file in UTF-8 ({_shown(e)})") from None
    record = {}
    for number, row in enumerate(rows, 1):
        if not row:
            continue
        if len(row) != 3:
            raise Refused(f"{what}: line {number} does not have 3 fields (path, hash, size)")
        path, digest, size = row
        if path in record:
            raise Refused(f"{what}: '{_shown(path)}' is listed twice")
        record[path] = (digest, size)
    return record


def _expected_hash(member, digest, size, record_what):
    algorithm, _, value = digest.partition("=")
    if algorithm not in _HASHES or not value:
        raise Refused(f"{member.what}: {record_what} gives it no sha256 hash")
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        raise Refused(f"{member.what}: {record_what} gives it a malformed hash") from None
    if len(raw) != hashlib.new(algorithm).digest_size:
        raise Refused(f"{member.what}: {record_what} gives it a malformed hash")
    if size and (not size.isdigit() or int(size) != member.info.file_size):
        raise Refused(f"{member.what}: its size does not match {record_what}")
    return algorithm, raw


def _open_wheel(fd, limits):
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise Refused("not a regular file")
    f = open(fd, "rb", closefd=False)
    # The end record says how many members there are and how large the
    # central directory is; both are checked before zipfile builds an object
    # for each entry.
    end = zipfile._EndRecData(f)      # private, but stable in Debian's 3.11 (the one embedded)
    if end is None:
        raise Refused("not a zip archive (no end of central directory record)")
    if end[zipfile._ECD_ENTRIES_TOTAL] > limits.files:
        raise Refused(f"the wheel has {end[zipfile._ECD_ENTRIES_TOTAL]} members, more than the "
                      f"limit of {limits.files}")
    if end[zipfile._ECD_SIZE] > _CENTRAL_DIRECTORY_MAX:
        raise Refused(f"its central directory is larger than {_CENTRAL_DIRECTORY_MAX} bytes")
    f.seek(0)
    try:
        zf = zipfile.ZipFile(f)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError) as e:
        raise Refused(f"not a valid zip archive ({_shown(e)})") from None
    if len(zf.infolist()) > limits.files:
        raise Refused(f"the wheel has {len(zf.infolist())} members, more than the limit of {limits.files}")
    return zf


def _members(zf, limits):
    members, seen, declared = [], set(), 0
    for info in zf.infolist():
        if info.filename in seen:
            raise Refused(f"member '{_shown(info.filename)}': a duplicate name")
        seen.add(info.filename)
        parts, is_dir = _member_path(info.filename, limits)
        m = Member(info, parts, is_dir)
        _member_type(info, m.what)
        if info.flag_bits & 0x1:
            raise Refused(f"{m.what}: encrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise Refused(f"{m.what}: compression method {info.compress_type} (a wheel uses "
                          "stored or deflated members)")
        if info.file_size > limits.file_size:
            raise Refused(f"{m.what}: declares {info.file_size} bytes, more than the limit of "
                          f"{limits.file_size}")
        if info.file_size >= limits.ratio_floor and \
                info.file_size > limits.ratio * max(info.compress_size, 1):
            raise Refused(f"{m.what}: compressed {info.file_size // max(info.compress_size, 1)}:1, "
                          f"past the limit of {limits.ratio}:1 (a zip bomb?)")
        declared += info.file_size
        members.append(m)
    if declared > limits.bytes:
        raise Refused(f"its members declare {declared} bytes in all, more than the limit of {limits.bytes}")
    return members


def _dist_info(members):
    tops = {m.parts[0] for m in members if len(m.parts) > 1 or m.is_dir}
    found = sorted(t for t in tops if t.endswith(".dist-info"))
    if not found:
        raise Refused("no .dist-info directory")
    if len(found) > 1:
        raise Refused(f"more than one .dist-info directory: {', '.join(_shown(f, 80) for f in found)}")
    return found[0]


def _metadata(zf, by_name, dist_info):
    def need(leaf, limit):
        m = by_name.get(f"{dist_info}/{leaf}")
        if m is None or m.is_dir:
            raise Refused(f"{_shown(dist_info)}/{leaf} is missing")
        return _read_member(zf, m, limit)

    what = f"{_shown(dist_info)}/METADATA"
    meta = _headers(need("METADATA", _METADATA_MAX), what)
    name = _one_header(meta, "Name", what)
    version = _one_header(meta, "Version", what)
    if len(name) > 128 or not _DIST_NAME.match(name):
        raise Refused(f"{what}: Name '{_shown(name, 80)}' is not a valid distribution name")
    if len(version) > 64 or not _VERSION.match(version):
        raise Refused(f"{what}: Version '{_shown(version, 80)}' is not a valid version (PEP 440)")
    base = dist_info[:-len(".dist-info")]
    if base.count("-") != 1 or _normalize(base.split("-")[0]) != _normalize(name):
        raise Refused(f"{_shown(dist_info)} does not match METADATA Name '{name}' and Version '{version}'")
    what = f"{_shown(dist_info)}/WHEEL"
    wheel_version = _one_header(_headers(need("WHEEL", _METADATA_MAX), what), "Wheel-Version", what)
    if not _WHEEL_VERSION.match(wheel_version):
        raise Refused(f"{what}: Wheel-Version '{_shown(wheel_version, 40)}' is not 1.x")
    record = _parse_record(need("RECORD", _RECORD_MAX), f"{_shown(dist_info)}/RECORD")
    return name, version, record


def _targets(members, dist_info):
    """Where each member goes: purelib and platlib of NAME-VERSION.data at
    the root, like the rest; scripts, headers and data nowhere (no program
    runs from a plugin, nothing compiles against it, and data files belong
    to a prefix a plugin does not have)."""
    data_dir = dist_info[:-len(".dist-info")] + ".data"
    files, dirs = {}, set()
    for m in members:
        parts = m.parts
        if parts[0] == data_dir:
            if len(parts) < 2:
                continue
            keep = _DATA_SCHEMES.get(parts[1])
            if keep is None:
                raise Refused(f"{m.what}: unknown directory '{_shown(parts[1], 60)}' in {_shown(data_dir)}")
            if not keep or len(parts) < 3:
                continue
            parts = parts[2:]
        elif parts[0] == dist_info and len(parts) == 2 and parts[1] in ("RECORD", "RECORD.jws", "RECORD.p7s"):
            continue     # written anew below; signatures of the old one would not hold
        if parts == ("__init__.py",):
            raise Refused(f"{m.what}: a top-level __init__.py would make the plugin a package; "
                          "a wheel installs as the path layout")
        # What the glue reads as the plugin's metadata is this one
        # .dist-info, whole: nothing else may add to it or make another.
        if m.parts[0] != dist_info and (parts[0].endswith(".dist-info") or parts[0] == dist_info):
            raise Refused(f"{m.what}: installs into a .dist-info directory")
        m.target = parts
        for i in range(1, len(parts) if not m.is_dir else len(parts) + 1):
            dirs.add(parts[:i])
        if not m.is_dir:
            if parts in files:
                raise Refused(f"{m.what}: installs to the same path as member '{_shown(files[parts].raw)}'")
            files[parts] = m
    for parts, m in files.items():
        if parts in dirs:
            raise Refused(f"{m.what}: installs to a path that is also a directory")


def install_wheel(fd, staging, name, limits):
    zf = _open_wheel(fd, limits)
    members = _members(zf, limits)
    by_name = {m.raw: m for m in members}
    dist_info = _dist_info(members)
    dist_name, version, record = _metadata(zf, by_name, dist_info)
    record_name = f"{dist_info}/RECORD"
    record_what = _shown(record_name)
    for path in record:
        m = by_name.get(path)
        if m is None:
            raise Refused(f"{record_what} lists '{_shown(path)}', which the wheel does not contain")
    for m in members:
        if m.is_dir or m.raw in (record_name, record_name + ".jws", record_name + ".p7s"):
            continue
        if m.raw not in record:
            raise Refused(f"{m.what}: not listed in {record_what}")
        m.hash = _expected_hash(m, *record[m.raw], record_what)
    _targets(members, dist_info)
    if name is None:
        name = dist_name.lower().replace(".", "_")
        if not _PLUGIN_NAME.match(name):
            raise Refused(f"distribution name '{_shown(dist_name)}' does not make a plugin name "
                          "([A-Za-z0-9_-]+); give one with --name")

    out = Staging(staging, limits)
    installed, ignored = [], 0
    for m in sorted(members, key=lambda m: m.raw):
        if m.is_dir:
            if m.target:
                out.mkdirs(m.target)
            continue
        if m.hash is None:
            continue
        algorithm, expected = m.hash
        hasher = hashlib.new(algorithm)
        try:
            with zf.open(m.info) as src:
                if m.target is None:
                    ignored += 1
                    size = 0
                    while chunk := src.read(_CHUNK):
                        size += len(chunk)
                        hasher.update(chunk)
                else:
                    size = out.copy(src, m.target, m.what, hasher)
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as e:
            raise Refused(f"{m.what}: {_shown(e)}") from None
        if size != m.info.file_size:
            raise Refused(f"{m.what}: holds {size} bytes, not the {m.info.file_size} it declares")
        if hasher.digest() != expected:
            raise Refused(f"{m.what}: its {algorithm} does not match {record_what}")
        if m.target is not None:
            b64 = base64.urlsafe_b64encode(expected).rstrip(b"=").decode()
            installed.append(("/".join(m.target), f"{algorithm}={b64}", str(size)))
    # RECORD as pip leaves it: the paths as installed.
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\n")
    writer.writerows(installed)
    writer.writerow((record_name, "", ""))
    out.write_bytes((dist_info, "RECORD"), text.getvalue().encode("utf-8"), record_what)
    return name, version, ignored


def _inside(root, path):
    return path == root or path.startswith(root.rstrip("/") + "/")


# Read permission for everyone: what a plugin's worker, running as another
# uid, needs, and what the installed copy gets (0644, 0755). A file or
# directory its owner kept from others is refused, never published wider.
_ALL_READ = {False: 0o444, True: 0o555}


def _not_wider(st, what):
    is_dir = stat.S_ISDIR(st.st_mode)
    if st.st_mode & _ALL_READ[is_dir] != _ALL_READ[is_dir]:
        raise Refused(f"{what}: mode {stat.S_IMODE(st.st_mode):04o} keeps it from others; plugbox installs "
                      f"everything readable by all ({'0755' if is_dir else '0644'}) and never widens a mode")


def _check_source(source, source_id):
    """The directory is the one `plugbox install` opened (DEV:INO), not one
    swapped in since, for a symlink or otherwise."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as e:
        raise Refused(f"cannot open it ({os.strerror(e.errno) if e.errno else e})") from None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if f"{st.st_dev}:{st.st_ino}" != source_id:
        raise Refused("the directory was replaced (or swapped for a symlink) after plugbox opened it")
    _not_wider(st, "the directory")
    return st


def install_dir(source, source_id, staging, name, limits):
    root = os.path.realpath(source)
    out = Staging(staging, limits)
    root_st = _check_source(root, source_id)

    def unreadable(what, e):
        # The source is the operator's, read as the install worker's uid
        # (as root: install.h's PB_INSTALL_UID): it must be world-readable,
        # as a plugin worker needs it to be anyway.
        return Refused(f"{what}: cannot read it ({os.strerror(e.errno) if e.errno else e})")

    def copy(directory, rel, ancestors):
        if len(rel) >= limits.depth:
            raise Refused(f"'{_shown('/'.join(rel))}': deeper than {limits.depth} directories")
        try:
            entries = os.scandir(directory)
        except OSError as e:
            raise unreadable(f"'{_shown('/'.join(rel) or '.')}'", e) from None
        with entries:
            for entry in entries:
                parts = rel + (entry.name,)
                what = f"'{_shown('/'.join(parts))}'"
                if any(ord(c) < 0x20 or ord(c) == 0x7f for c in entry.name):
                    raise Refused(f"{what}: control characters in its name")
                _check_component(entry.name, what)
                path = entry.path
                try:
                    st = os.lstat(path)
                except OSError as e:
                    raise unreadable(what, e) from None
                if stat.S_ISLNK(st.st_mode):
                    # Followed only to somewhere inside the directory; in the
                    # mount tree, an absolute link to the host resolves to
                    # nothing at all.
                    path = os.path.realpath(path)
                    if not _inside(root, path):
                        raise Refused(f"{what}: a symlink that leads out of the plugin directory")
                    try:
                        st = os.stat(path)
                    except OSError:
                        raise Refused(f"{what}: a symlink to nothing") from None
                if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
                    _not_wider(st, what)
                if stat.S_ISDIR(st.st_mode):
                    key = (st.st_dev, st.st_ino)
                    if key in ancestors:
                        raise Refused(f"{what}: a symlink loop")
                    out.mkdirs(parts)
                    copy(path, parts, ancestors | {key})
                elif stat.S_ISREG(st.st_mode):
                    flags = os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW
                    try:
                        src_fd = os.open(path, flags)
                    except OSError as e:
                        raise unreadable(what, e) from None
                    with open(src_fd, "rb") as src:
                        opened = os.fstat(src.fileno())
                        if not stat.S_ISREG(opened.st_mode):
                            raise Refused(f"{what}: changed while it was copied")
                        _not_wider(opened, what)
                        out.copy(src, parts, what)
                else:
                    kinds = {stat.S_IFCHR: "character device", stat.S_IFBLK: "block device",
                             stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket"}
                    raise Refused(f"{what}: a {kinds.get(stat.S_IFMT(st.st_mode), 'special file')} "
                                  "(only files and directories are installed)")

    copy(root, (), frozenset({(root_st.st_dev, root_st.st_ino)}))
    # Read back from the copy: what was installed, not what the source says now.
    manifest = _read_manifest(staging)
    if manifest is not None and "name" in manifest and manifest["name"] != name:
        raise Refused(f"plugin.toml names the plugin '{_shown(manifest['name'], 80)}', but it "
                      f"installs as '{name}'")
    return name, plugin_version(staging)


def _read_small(path):
    with open(os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOFOLLOW), "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        data = f.read(_METADATA_MAX + 1)
    return data if len(data) <= _METADATA_MAX else None


def _read_manifest(root):
    import tomllib
    try:
        data = _read_small(os.path.join(root, "plugin.toml"))
    except OSError:
        return None
    if data is None:
        return None
    try:
        manifest = tomllib.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise Refused(f"plugin.toml: {_shown(e)}") from None
    return manifest


def plugin_version(root):
    """An installed plugin's version, the way the worker's glue finds it
    (bootstrap.py): plugin.toml, then a literal __version__ in __init__.py,
    then the first *.dist-info's METADATA. "" when none says."""
    import ast
    version = None
    try:
        manifest = _read_manifest(root)
    except Refused:
        manifest = None
    if manifest and isinstance(manifest.get("version"), str):
        version = manifest["version"]
    elif os.path.isfile(os.path.join(root, "__init__.py")):
        try:
            tree = ast.parse(_read_small(os.path.join(root, "__init__.py")) or b"")
        except (SyntaxError, ValueError, OSError, RecursionError, MemoryError):
            tree = ast.Module(body=[], type_ignores=[])
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and \
                    isinstance(node.value.value, str) and \
                    any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets):
                version = node.value.value
    else:
        try:
            infos = sorted(e for e in os.listdir(root) if e.endswith(".dist-info"))
        except OSError:
            infos = []
        for info in infos:
            try:
                data = _read_small(os.path.join(root, info, "METADATA"))
                values = _headers(data or b"", "").get_all("Version") or []
            except OSError:
                continue
            if values:
                version = str(values[0]).strip()
                break
    if not version or len(version) > 64 or any(ord(c) <= 0x20 or ord(c) == 0x7f for c in version):
        return ""
    return version


def _probe(spec, staging):
    """Tests only (install.h): what this sandbox lets through."""
    kind, _, path = spec.partition(":")
    if path.startswith("@staging/") and staging:
        path = os.path.join(staging, path[len("@staging/"):])
    try:
        if kind == "w":
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            os.write(fd, b"probe\n")
        else:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            os.read(fd, 64)
        os.close(fd)
        return "ok"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))


def run(mode, fd, staging, source, source_id, old, name, limits, probes):
    lines = [f"probe\t{_field(p, 300)}\t{_probe(p, staging)}\n" for p in probes]
    try:
        lim = Limits(limits)
        if mode == "version":
            lines.append(f"version\t{_field(plugin_version(old))}\n")
        elif mode == "wheel":
            name, version, ignored = install_wheel(fd, staging, name, lim)
            lines.append(f"ok\t{_field(name)}\t{_field(version)}\t{ignored}\n")
        else:
            name, version = install_dir(source, source_id, staging, name, lim)
            lines.append(f"ok\t{_field(name)}\t{_field(version)}\t0\n")
    except Refused as e:
        lines.append(f"refused\t{_field(e)}\n")
    except (zipfile.BadZipFile, zlib.error, EOFError, UnicodeError, csv.Error) as e:
        lines.append(f"refused\t{_field(type(e).__name__)}: {_field(e)}\n")
    except MemoryError:
        lines.append("failed\tout of memory (install.policy's @limit memory)\n")
    except OSError as e:
        where = f" ({_shown(e.filename, 100)})" if e.filename else ""
        lines.append(f"failed\t{_field(os.strerror(e.errno) if e.errno else e)}{_field(where)}\n")
    except Exception as e:
        lines.append(f"failed\t{_field(type(e).__name__)}: {_field(e)}\n")
    return "".join(lines)
