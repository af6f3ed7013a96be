#!/bin/sh
# The compatibility suite's plugin tests (tests/compat): real packages from
# Debian's archive and standard-library workloads, vendored and called
# through the built plugbox. Run by `make check` and `make compat-check-plugins`;
# PB_PYTEST_ARGS narrows a run, e.g. PB_PYTEST_ARGS='-k numpy'.
set -e
: "${PYTHON_FOR_TESTS:=/usr/bin/python3}"
: "${PB_TEST_SRCDIR:?run through make check}"
PYTHONDONTWRITEBYTECODE=1
export PYTHONDONTWRITEBYTECODE
mkdir -p "$PB_TEST_BUILDDIR/tmp"
exec "$PYTHON_FOR_TESTS" -m pytest -q -rsxX -p no:cacheprovider \
	--basetemp="$PB_TEST_BUILDDIR/tmp/pytest-compat" ${PB_PYTEST_ARGS:-} "$PB_TEST_SRCDIR/compat"
