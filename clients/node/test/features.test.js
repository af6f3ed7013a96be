'use strict';
// Protocol version 2 beyond calls, against a real `plugbox serve`: hooks
// (an entry-point group across plugins, first-result), cancelling a running
// call and a queued one, the output and log records of a call streamed to
// the client that made it, and host functions the client offers, called
// back by plugins (nested calls included).

const assert = require('node:assert/strict');
const { describe, test, before, after } = require('node:test');
const { connect, PlugboxError } = require('..');
const { startDaemon, PROTO, TIME_SCALE } = require('./lib/daemon');

const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const failure = (p) => p.then((v) => assert.fail(`resolved to ${JSON.stringify(v)} instead of rejecting`), (e) => e);

describe('hooks', { timeout: 120000 }, () => {
  let daemon;
  let client;

  before(async () => {
    daemon = await startDaemon({ plugins: ['hooka', 'hookb', 'hookc', 'nodetools'] });
    client = await connect(daemon.sock, { proto: PROTO, streamOutput: true });
  });

  after(async () => {
    if (client) client.destroy();
    if (daemon) await daemon.cleanup();
  });

  test('every entry point of the group answers, in name order, errors included', async () => {
    const answers = await client.hook('nodegroup', [1, 'two'], { kwargs: { k: true } });
    assert.equal(answers.length, 3);
    assert.deepStrictEqual(answers[0], { plugin: 'hooka', name: 'a', value: null });
    assert.deepStrictEqual(answers[1], { plugin: 'hookb', name: 'b', value: { plugin: 'hookb', args: [1, 'two'], kwargs: { k: true } } });
    const { plugin, name, error } = answers[2];
    assert.deepStrictEqual([plugin, name], ['hookc', 'c']);
    assert.ok(error instanceof PlugboxError);
    assert.equal(error.kind, 'exception');
    assert.equal(error.remoteType, 'KeyError');
    assert.equal(error.plugin, 'hookc');
    assert.match(error.message, /hookc has no answer/);
    assert.match(error.traceback, /in fail/);
  });

  test('first-result stops at the first value other than null, and calls nothing after it', async () => {
    const seen = [];
    const answers = await client.hook('nodegroup', ['x'], {
      firstResult: true,
      onOutput: (o) => seen.push(o.text),
    });
    assert.deepStrictEqual(answers, [
      { plugin: 'hooka', name: 'a', value: null },
      { plugin: 'hookb', name: 'b', value: { plugin: 'hookb', args: ['x'], kwargs: {} } },
    ]);
    assert.ok(!seen.includes('hookc was called'), seen.join('|'));
    // Without first-result hookc is called, and its line comes with the hook.
    const all = [];
    await client.hook('nodegroup', [], { onOutput: (o) => all.push(`${o.plugin}: ${o.text}`) });
    assert.ok(all.includes('hookc: hookc was called'), all.join('|'));
  });

  test('the order given, a subset of plugins, and groups nobody provides', async () => {
    const given = await client.hook('nodegroup', [], { order: 'given', plugins: ['hookc', 'hookb'] });
    assert.deepStrictEqual(given.map((a) => a.plugin), ['hookc', 'hookb']);
    assert.equal(given[0].error.remoteType, 'KeyError');
    const first = await client.hook('nodegroup', [], { order: 'given', plugins: ['hookb', 'hooka'], firstResult: true });
    assert.deepStrictEqual(first.map((a) => a.plugin), ['hookb']);
    const none = await failure(client.hook('nosuchgroup'));
    assert.equal(none.kind, 'not_found');
    assert.match(none.message, /nosuchgroup/);
    assert.deepStrictEqual(await client.hook('nosuchgroup', [], { allowUnknown: true }), []);
    const badOrder = await failure(client.hook('nodegroup', [], { order: 'random' }));
    assert.match(badOrder.message, /order must be one of name, priority, given/);
  });
});

describe('cancel', { timeout: 120000 }, () => {
  let daemon;
  let client;

  before(async () => {
    daemon = await startDaemon({ plugins: ['nodetools'] });
    client = await connect(daemon.sock, { proto: PROTO, streamOutput: true });
  });

  after(async () => {
    if (client) client.destroy();
    if (daemon) await daemon.cleanup();
  });

  test('a running sleep is interrupted: the call ends cancelled at once, and the worker goes on', async () => {
    assert.equal(await client.call('nodetools', 'mark', ['before']), 1);
    let running;
    const started = new Promise((resolve) => {
      running = resolve;
    });
    const sleeping = client.call('nodetools', 'sleep_noting', [30], {
      onOutput: (o) => o.text === 'sleeping' && running(),
    });
    await started; // the plugin is in time.sleep now
    const t0 = Date.now();
    assert.equal(client.cancel(sleeping), true);
    const err = await failure(sleeping);
    assert.ok(err instanceof PlugboxError);
    assert.equal(err.kind, 'cancelled', err.message);
    assert.equal(err.requestId, sleeping.id);
    assert.ok(Date.now() - t0 < 2000 * TIME_SCALE, `${Date.now() - t0} ms`);
    assert.equal(client.cancel(sleeping), false); // no longer in flight
    // The same worker (its state kept), not a replacement.
    assert.deepStrictEqual(await client.call('nodetools', 'marks'), ['before']);
  });

  test('an AbortSignal cancels a queued call before it runs', async () => {
    const plain = await connect(daemon.sock, { proto: PROTO });
    try {
      const blocker = plain.call('nodetools', 'sleep_noting', [0.5]);
      const ctl = new AbortController();
      const queued = plain.call('nodetools', 'mark', ['never'], { signal: ctl.signal });
      ctl.abort();
      const err = await failure(queued);
      assert.equal(err.kind, 'cancelled');
      assert.equal(await blocker, 'slept');
      assert.deepStrictEqual(await plain.call('nodetools', 'marks'), ['before']);
      const early = await failure(plain.call('nodetools', 'echo', [1], { signal: ctl.signal }));
      assert.match(early.message, /aborted before it was sent/);
    } finally {
      plain.destroy();
    }
  });
});

describe('output and log records', { timeout: 120000 }, () => {
  let daemon;

  before(async () => {
    daemon = await startDaemon({ plugins: ['nodetools'] });
  });

  after(async () => {
    if (daemon) await daemon.cleanup();
  });

  test("a call's stdout, stderr and log record reach its onOutput before its answer", async () => {
    const client = await connect(daemon.sock, { proto: PROTO, streamOutput: true });
    try {
      const events = [];
      client.on('output', (o) => events.push(o));
      const mine = { t1: [], t2: [] };
      const p1 = client.call('nodetools', 'chatty', ['t1'], { onOutput: (o) => mine.t1.push(o) });
      const p2 = client.call('nodetools', 'chatty', ['t2'], { onOutput: (o) => mine.t2.push(o) });
      const seenAtAnswer = await p1.then((v) => [v, mine.t1.length]);
      assert.deepStrictEqual(seenAtAnswer, ['t1', 3]);
      assert.equal(await p2, 't2');
      for (const tag of ['t1', 't2']) {
        const id = tag === 't1' ? p1.id : p2.id;
        const byStream = Object.fromEntries(mine[tag].map((o) => [o.stream, o]));
        assert.deepStrictEqual(Object.keys(byStream).sort(), ['log', 'stderr', 'stdout']);
        for (const o of mine[tag]) {
          assert.equal(o.callId, id);
          assert.equal(o.plugin, 'nodetools');
        }
        assert.equal(byStream.stdout.text, `out ${tag}`);
        assert.equal(byStream.stderr.text, `err ${tag}`);
        assert.equal(byStream.log.text, `log ${tag}`);
        assert.equal(byStream.log.level, 30);
        assert.equal(byStream.log.logger, 'nodetools');
        assert.equal(byStream.log.excText, '');
      }
      // The 'output' event saw the same six records.
      assert.equal(events.length, 6);
      assert.deepStrictEqual(events.map((o) => o.callId).sort(), [p1.id, p1.id, p1.id, p2.id, p2.id, p2.id].sort());
    } finally {
      client.destroy();
    }
  });

  test('output made outside any call reaches the connections that asked for idle output', async () => {
    const idle = await connect(daemon.sock, { proto: PROTO, streamOutput: true, idleOutput: true });
    const busy = await connect(daemon.sock, { proto: PROTO, streamOutput: true });
    try {
      const got = new Promise((resolve) => idle.on('output', (o) => o.text === 'said later' && resolve(o)));
      const notBusy = [];
      busy.on('output', (o) => notBusy.push(o));
      assert.equal(await busy.call('nodetools', 'print_later', [0.2, 'said later']), true);
      const o = await got;
      assert.deepStrictEqual([o.callId, o.plugin, o.stream], [0, 'nodetools', 'stdout']);
      assert.deepStrictEqual(notBusy, []); // the call had ended: not its output
    } finally {
      idle.destroy();
      busy.destroy();
    }
  });

  test('a connection that did not ask for output gets none', async () => {
    const client = await connect(daemon.sock, { proto: PROTO });
    try {
      const events = [];
      client.on('output', (o) => events.push(o));
      assert.equal(await client.call('nodetools', 'chatty', ['quiet']), 'quiet');
      await wait(100);
      assert.deepStrictEqual(events, []);
      const err = await failure(client.call('nodetools', 'chatty', ['x'], { onOutput: () => {} }));
      assert.match(err.message, /onOutput needs a connection made with streamOutput: true/);
      assert.match(daemon.stderr(), /out quiet/); // it went to the daemon's log instead
    } finally {
      client.destroy();
    }
  });
});

describe('host functions offered by the client', { timeout: 120000 }, () => {
  let daemon;
  let client;
  const seen = [];

  before(async () => {
    daemon = await startDaemon({
      plugins: ['nodetools'],
      policies: { nodetools: '@include default\n@host-call add again slow fails badvalue missing\n' },
    });
    client = await connect(daemon.sock, {
      proto: PROTO,
      hostFunctions: {
        add(a, b) {
          seen.push({ plugin: this.plugin, callId: this.callId, name: this.name });
          return a + b;
        },
        // A call back into the same plugin, nested in the waiting host call.
        again(n) {
          return this.call('countdown', [n]);
        },
        async slow(x) {
          await wait(50);
          return { doubled: x * 2 };
        },
        fails() {
          throw Object.assign(new Error('no such user'), { pythonType: 'KeyError' });
        },
        badvalue() {
          return () => 'a function';
        },
      },
    });
  });

  after(async () => {
    if (client) client.destroy();
    if (daemon) await daemon.cleanup();
  });

  test("a plugin's host call reaches the client's function and gets its result", async () => {
    const p = client.call('nodetools', 'host_add', [2, 3]);
    assert.equal(await p, 5);
    assert.deepStrictEqual(seen, [{ plugin: 'nodetools', callId: p.id, name: 'add' }]);
    assert.deepStrictEqual(await client.call('nodetools', 'host_ask', ['slow', 21]), { doubled: 42 });
    const many = await Promise.all([...Array(20).keys()].map((i) => client.call('nodetools', 'host_add', [i, 1000])));
    assert.deepStrictEqual(many, [...Array(20).keys()].map((i) => i + 1000));
  });

  test('calls nested in host calls, four deep', async () => {
    assert.deepStrictEqual(await client.call('nodetools', 'countdown', [3]), [3, 2, 1, 'bottom']);
  });

  test('what the function throws is raised in the plugin; what is not granted or offered is refused there', async () => {
    const thrown = await failure(client.call('nodetools', 'host_ask', ['fails']));
    assert.equal(thrown.kind, 'exception');
    assert.equal(thrown.remoteType, 'KeyError');
    assert.match(thrown.message, /no such user/);
    const bad = await failure(client.call('nodetools', 'host_ask', ['badvalue']));
    assert.equal(bad.remoteType, 'TypeError');
    assert.match(bad.message, /badvalue returned what plugbox cannot send/);
    const missing = await failure(client.call('nodetools', 'host_ask', ['missing']));
    assert.equal(missing.remoteType, 'LookupError');
    // docs/protocol.md words it "the client that made the call offers no such function".
    assert.match(missing.message, /host function 'missing' is granted to plugin 'nodetools' but .* no such function/);
    const denied = await failure(client.call('nodetools', 'host_ask', ['secret']));
    assert.equal(denied.remoteType, 'PermissionError');
    assert.equal(await client.call('nodetools', 'host_add', [1, 1]), 2);
  });

  test('a client that goes away while a plugin waits on its host function fails that host call, no one else', async () => {
    let called;
    const reached = new Promise((resolve) => {
      called = resolve;
    });
    const leaving = await connect(daemon.sock, {
      proto: PROTO,
      hostFunctions: {
        slow() {
          called();
          return new Promise(() => {}); // never answers
        },
      },
    });
    const p = leaving.call('nodetools', 'host_keep', ['slow']);
    const outcome = failure(p);
    await reached;
    leaving.destroy();
    const err = await outcome;
    assert.equal(err.kind, 'disconnected');
    assert.match(err.message, /call nodetools\.host_keep \(id \d+\) failed: the client closed the connection/);
    // The plugin's host call failed (it kept what it got); this client is unharmed.
    let kept = [];
    for (let i = 0; i < 100 && kept.length === 0; i++) {
      kept = await client.call('nodetools', 'kept');
      if (kept.length === 0) await wait(50);
    }
    // The connection's end both cancels its call and fails its host call:
    // whichever reaches the plugin first is what it saw.
    assert.equal(kept.length, 1, JSON.stringify(kept));
    const [type, text] = kept[0];
    assert.ok((type === 'RuntimeError' && text === 'the client offering host function slow went away') || type === 'Cancelled',
      JSON.stringify(kept[0]));
    assert.equal(await client.call('nodetools', 'host_add', [20, 22]), 42);
  });

  test('another connection that offers nothing is refused the same names', async () => {
    const other = await connect(daemon.sock, { proto: PROTO });
    try {
      const err = await failure(other.call('nodetools', 'host_add', [1, 2]));
      assert.equal(err.remoteType, 'LookupError');
      const bad = await failure(other.register('not a name', () => 1));
      assert.equal(bad.kind, 'bad_request');
    } finally {
      other.destroy();
    }
  });
});
