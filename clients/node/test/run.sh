#!/bin/sh
# The Node.js client's tests (clients/node): node's own test runner on
# test/*.test.js, against a real `plugbox serve` of this build. Run by make
# check. Skipped (exit 77) with the reason when node 18 or later is not on
# PATH or the client's dependency (protobufjs) is not installed: `npm ci` in
# clients/node installs it from package-lock.json. PB_REQUIRE_NODE=1 (CI)
# makes either a failure instead. NODE names another node binary; a
# protobufjs installed elsewhere is found through NODE_PATH (distcheck's
# copy of the sources has no node_modules).
: "${PB_TOP_SRCDIR:?run through make check}"
client="$PB_TOP_SRCDIR/clients/node"
node=${NODE:-node}

skip() {
	echo "SKIP: $*"
	if [ "${PB_REQUIRE_NODE:-0}" = 1 ]; then
		echo "PB_REQUIRE_NODE=1: failing instead"
		exit 99
	fi
	exit 77
}

command -v "$node" >/dev/null 2>&1 ||
	skip "no node on PATH: apt-get install nodejs npm, then (cd clients/node && npm ci)"
major=$("$node" -p 'process.versions.node.split(".")[0]') || exit 99
[ "$major" -ge 18 ] || skip "node $("$node" --version) is older than 18, which the client needs"
(cd "$client" && "$node" -e 'require.resolve("protobufjs")') >/dev/null 2>&1 ||
	skip "protobufjs is not installed: (cd $client && npm ci)"

PLUGBOX_PROTO="$PB_TOP_SRCDIR/proto/plugbox.proto"
export PLUGBOX_PROTO
cd "$client" || exit 99
echo "node $("$node" --version), protobufjs $("$node" -p 'require("protobufjs/package.json").version')"
# A test that fails while holding a socket could keep node waiting: bounded.
exec timeout 600 "$node" --test test/*.test.js
