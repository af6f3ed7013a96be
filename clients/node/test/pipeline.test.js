'use strict';
// Many requests in flight on one connection, answered out of order, each
// matched to its id; and what a client sees when the daemon goes away.

const assert = require('node:assert/strict');
const { describe, test, before, after } = require('node:test');
const { connect, ConnectionError, PlugboxError } = require('..');
const { startDaemon, PROTO, TIME_SCALE } = require('./lib/daemon');

describe('pipelining', { timeout: 120000 }, () => {
  let daemon;
  let client;

  before(async () => {
    daemon = await startDaemon({ plugins: ['nodetools', 'tools'] });
    client = await connect(daemon.sock, { proto: PROTO });
  });

  after(async () => {
    if (client) client.destroy();
    if (daemon) await daemon.cleanup();
  });

  test('1,000 pipelined calls over two plugins, each answer matched to its id', async () => {
    // Calls alternate between two workers, and every 100th sleeps a little,
    // so answers come back in another order than the calls went out; an
    // exception and a timeout among them take nothing else with them.
    const order = [];
    const calls = [];
    for (let i = 0; i < 1000; i++) {
      let p;
      if (i === 500) p = client.call('tools', 'boom', [`at ${i}`]);
      else if (i === 700) p = client.call('tools', 'sleep', [30], { timeout: 0.3 });
      else if (i % 100 === 0) p = client.call('tools', 'sleep', [0.05, `slept ${i}`]);
      else if (i % 2) p = client.call('nodetools', 'square', [i]);
      else p = client.call('tools', 'echo', [{ i, s: `s${i}` }]);
      const id = p.id;
      calls.push({ i, id, p });
      p.then(() => order.push(id), () => order.push(id));
    }
    assert.equal(new Set(calls.map((c) => c.id)).size, 1000, 'ids are unique');
    assert.equal(client.pending, 1000);
    const settled = await Promise.allSettled(calls.map((c) => c.p));
    for (const [k, { i }] of calls.entries()) {
      const s = settled[k];
      if (i === 500) {
        assert.equal(s.status, 'rejected');
        assert.equal(s.reason.kind, 'exception');
        assert.equal(s.reason.remoteType, 'ValueError');
        assert.match(s.reason.message, /at 500/);
        assert.equal(s.reason.requestId, calls[k].id);
      } else if (i === 700) {
        assert.equal(s.status, 'rejected');
        assert.equal(s.reason.kind, 'timeout', s.reason.message);
      } else if (i % 100 === 0) {
        assert.deepStrictEqual(s, { status: 'fulfilled', value: `slept ${i}` });
      } else if (i % 2) {
        assert.deepStrictEqual(s, { status: 'fulfilled', value: i * i });
      } else {
        assert.deepStrictEqual(s, { status: 'fulfilled', value: { i, s: `s${i}` } });
      }
    }
    assert.equal(client.pending, 0);
    // Answers really came back out of order: the two workers ran side by side.
    const sentOrder = calls.map((c) => c.id);
    assert.notDeepStrictEqual(order, sentOrder);
  });
});

describe('when the daemon goes away', { timeout: 120000 }, () => {
  test('a daemon killed mid-call fails every pending promise, and later calls at once', async () => {
    const daemon = await startDaemon({ plugins: ['tools'] });
    try {
      const client = await connect(daemon.sock, { proto: PROTO });
      assert.equal(await client.call('tools', 'echo', ['warm']), 'warm');
      const closed = new Promise((resolve) => client.once('close', resolve));
      const slow = client.call('tools', 'sleep', [30, 'never']);
      const queued = [1, 2, 3].map((i) => client.call('tools', 'echo', [i]));
      const outcomes = Promise.all([slow, ...queued].map((p) => p.then(() => null, (e) => e)));
      await new Promise((r) => setTimeout(r, 200));
      const started = Date.now();
      await daemon.stop('SIGKILL');
      const errs = await outcomes;
      for (const err of errs) {
        assert.ok(err instanceof ConnectionError, String(err));
        assert.ok(err instanceof PlugboxError);
        assert.equal(err.kind, 'disconnected');
        assert.match(err.message, /call tools\.(sleep|echo) \(id \d+\) failed: the daemon closed the connection/);
      }
      assert.ok(Date.now() - started < 5000 * TIME_SCALE);
      assert.match(await closed, /the daemon closed the connection/);
      assert.equal(client.closed, true);
      assert.equal(client.pending, 0);
      const late = await client.call('tools', 'echo', [1]).then(() => null, (e) => e);
      assert.ok(late instanceof ConnectionError);
      assert.match(late.message, /connection to the daemon is closed/);
      const listed = await client.list().then(() => null, (e) => e);
      assert.ok(listed instanceof ConnectionError);
    } finally {
      await daemon.cleanup();
    }
  });

  test('close() lets the calls in flight finish, then the connection ends', async () => {
    const daemon = await startDaemon({ plugins: ['tools'] });
    try {
      const client = await connect(daemon.sock, { proto: PROTO });
      const a = client.call('tools', 'sleep', [0.3, 'late']);
      const b = client.call('tools', 'echo', ['b']);
      const closing = client.close();
      const refused = await client.call('tools', 'echo', [1]).then(() => null, (e) => e);
      assert.match(refused.message, /connection to the daemon is closing/);
      assert.equal(await a, 'late');
      assert.equal(await b, 'b');
      await closing;
      assert.equal(client.closed, true);
    } finally {
      await daemon.cleanup();
    }
  });

  test('connecting to a socket nobody listens on fails with the reason', async () => {
    const err = await connect('/nonexistent/plugbox.sock', { proto: PROTO }).then(() => null, (e) => e);
    assert.ok(err instanceof ConnectionError, String(err));
    assert.match(err.message, /cannot connect to \/nonexistent\/plugbox\.sock: .*ENOENT/);
  });
});
