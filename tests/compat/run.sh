#!/bin/sh
# The compatibility suite's plugin tests (tests/compat): real packages from
# Debian's archive and standard-library workloads, vendored and called
# through the built plugbox, run as the integration tests are. Run by
# `make check` and `make compat-check-plugins`; PB_PYTEST_ARGS narrows a
# run, e.g. PB_PYTEST_ARGS='-k numpy'.
PB_PYTEST_SUITE=compat
export PB_PYTEST_SUITE
exec "$(dirname "$0")/../integration/run.sh"
