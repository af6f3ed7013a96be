#!/bin/sh
# Tests of the host package `plugbox` (python/): pytest with Debian's python3
# on a copy of the package made from the sources and the uninstalled
# extension, which finds the uninstalled libplugbox.so.0 through
# LD_LIBRARY_PATH.
set -e
: "${PYTHON_FOR_TESTS:=/usr/bin/python3}"
: "${PB_TEST_SRCDIR:?run through make check}"
: "${PB_TOP_SRCDIR:?run through make check}"
: "${PB_TOP_BUILDDIR:?run through make check}"

core="$PB_TOP_BUILDDIR/python/plugbox/.libs/_core.so"
test -f "$core" || { echo "run.sh: $core is not built" >&2; exit 99; }

# A fresh import directory per run: symlinks, so the tests see the sources
# as they are (tests/tmp is removed by make clean).
pylib="$PB_TEST_BUILDDIR/tmp/python/pylib"
rm -rf "$pylib"
mkdir -p "$pylib/plugbox"
for f in "$PB_TOP_SRCDIR"/python/plugbox/*.py "$PB_TOP_SRCDIR"/python/plugbox/*.pyi \
	"$PB_TOP_SRCDIR"/python/plugbox/py.typed; do
	ln -s "$f" "$pylib/plugbox/"
done
ln -s "$core" "$pylib/plugbox/_core.so"

PYTHONPATH="$pylib${PYTHONPATH:+:$PYTHONPATH}"
LD_LIBRARY_PATH="$PB_TOP_BUILDDIR/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH LD_LIBRARY_PATH PYTHONDONTWRITEBYTECODE

# Built with --enable-sanitizers, _core.so and libplugbox.so are
# instrumented but python3 is not: the ASan runtime must be loaded first.
# CPython does not free everything at exit (interned objects, static
# types), which LeakSanitizer would report as leaks of ours, so leak
# detection is off for the interpreter process; the C tests check the
# library for leaks.
case " $PB_SANITIZE_CFLAGS " in
*" -fsanitize="*)
	LD_PRELOAD=$(${PB_CC:-cc} -print-file-name=libasan.so)
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
	export LD_PRELOAD ASAN_OPTIONS
	;;
esac

exec "$PYTHON_FOR_TESTS" -m pytest -q -p no:cacheprovider \
	--basetemp="$PB_TEST_BUILDDIR/tmp/python/pytest" "$PB_TEST_SRCDIR/python" "$@"
