#!/bin/sh
# Integration tests: drive the built plugbox on the test plugins with pytest,
# using Debian's python3 by full path (a pyenv shim may be first on PATH).
# PB_PYTEST_ARGS narrows a run while developing, e.g.
#   make check TESTS=tests/integration/run.sh PB_PYTEST_ARGS='-x -k flood'
# PB_PYTEST_SUITE names another directory of tests/ to run the same way
# (tests/compat/run.sh sets it).
set -e
: "${PYTHON_FOR_TESTS:=/usr/bin/python3}"
: "${PB_TEST_SRCDIR:?run through make check}"
suite=${PB_PYTEST_SUITE:-integration}
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE
mkdir -p "$PB_TEST_BUILDDIR/tmp"
exec "$PYTHON_FOR_TESTS" -m pytest -q -rsxX -p no:cacheprovider \
	--basetemp="$PB_TEST_BUILDDIR/tmp/pytest-$suite" ${PB_PYTEST_ARGS:-} "$PB_TEST_SRCDIR/$suite"
