'use strict';
// The client against a fake daemon that says what a real one never would:
// frames over the limit, bytes that do not decode, answers to nobody, a
// connection that ends inside a frame, no hello at all; and a daemon older
// than protocol versions. The client must fail what it must, keep what it
// can, and never throw.

const assert = require('node:assert/strict');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { describe, test, after } = require('node:test');
const { connect, loadSchema, ConnectionError, PlugboxError } = require('..');
const { FrameReader, frame } = require('../lib/frames');
const { PROTO } = require('./lib/daemon');

const schema = loadSchema(PROTO);
const { Envelope } = schema;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pbnode-fake-'));
let serial = 0;

after(() => fs.rmSync(dir, { recursive: true, force: true }));

function send(sock, env) {
  sock.write(frame(Envelope.encode(env).finish()));
}

// A fake daemon: greets with a version 1 Hello, answers the client's Hello
// with version 2 (unless versionOne), and hands every later request to
// onRequest(sock, envelope, id).
async function fakeDaemon(onRequest, { versionOne = false, greet = true } = {}) {
  const sockPath = path.join(dir, `fake${serial++}.sock`);
  const conns = [];
  const server = net.createServer((sock) => {
    conns.push(sock);
    sock.on('error', () => {});
    const state = { first: true };
    if (greet) send(sock, { id: 0, hello: { protocolVersion: 1 } });
    const reader = new FrameReader();
    sock.on('data', (chunk) => reader.push(chunk, (payload) => {
      const env = Envelope.decode(payload);
      const id = Number(env.id);
      if (env.body === 'hello') {
        if (versionOne || !state.first) {
          send(sock, { id: 0, error: { kind: 9, message: 'a client does not send a hello' } });
          sock.end();
        } else {
          send(sock, { id: 0, hello: { protocolVersion: Math.min(2, env.hello.protocolVersion), maxProtocolVersion: 2 } });
        }
      } else {
        onRequest(sock, env, id);
      }
      state.first = false;
    }));
  });
  await new Promise((resolve) => server.listen(sockPath, resolve));
  return {
    path: sockPath,
    close: () => {
      for (const c of conns) c.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

const result = (id, value) => ({ id, result: { value } });

// The error p rejects with, or an Error saying it did not (in time: a
// client that waits forever fails the test instead of hanging it).
function failure(p, ms = 10000) {
  let timer;
  const late = new Promise((resolve) => {
    timer = setTimeout(() => resolve(new Error(`no rejection within ${ms} ms`)), ms);
  });
  const settled = p.then((v) => new Error(`resolved to ${v} instead of rejecting`), (e) => e);
  return Promise.race([settled, late]).finally(() => clearTimeout(timer));
}

// What p resolves to; rejects if it does not within ms.
function answer(p, ms = 10000) {
  let timer;
  const late = new Promise((resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

describe('a daemon that breaks the protocol', { timeout: 20000 }, () => {
  test('a frame announced over 16 MiB ends the connection; pending calls fail, nothing throws', async () => {
    const fake = await fakeDaemon((sock, env, id) => {
      if (env.call.function === 'ok') send(sock, result(id, { intValue: 1 }));
      else sock.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
    });
    try {
      const client = await answer(connect(fake.path, { proto: PROTO }));
      assert.equal(await answer(client.call('p', 'ok')), 1);
      const other = client.call('p', 'slow');
      const err = await failure(client.call('p', 'huge'));
      assert.ok(err instanceof ConnectionError, String(err));
      assert.match(err.message, /call p\.huge \(id \d+\) failed: the daemon announced a frame of 4294967295 bytes, over the limit of 16777216/);
      const err2 = await failure(other);
      assert.ok(err2 instanceof ConnectionError);
      assert.equal(client.closed, true);
    } finally {
      await fake.close();
    }
  });

  test('a smaller maxFrame is the limit', async () => {
    const fake = await fakeDaemon((sock, env, id) => send(sock, result(id, { stringValue: 'x'.repeat(2000) })));
    try {
      const client = await answer(connect(fake.path, { proto: PROTO, maxFrame: 1024 }));
      const err = await failure(client.call('p', 'f'));
      assert.match(err.message, /announced a frame of 20\d\d bytes, over the limit of 1024/);
    } finally {
      await fake.close();
    }
  });

  test('an envelope that does not decode ends the connection with the reason', async () => {
    const fake = await fakeDaemon((sock) => sock.write(frame(Buffer.from([0x0a, 0xff, 0x01, 0x02]))));
    try {
      const client = await answer(connect(fake.path, { proto: PROTO }));
      const err = await failure(client.call('p', 'f'));
      assert.ok(err instanceof ConnectionError, String(err));
      assert.match(err.message, /the daemon sent an undecodable envelope \(4 bytes\)/);
    } finally {
      await fake.close();
    }
  });

  test('a result nested 100,000 deep is refused, not recursed into', async () => {
    // Value{list_value: ValueList{items: [Value{...}]}}, as bytes.
    const varint = (n) => {
      const out = [];
      for (; n > 127; n = Math.floor(n / 128)) out.push((n & 127) | 128);
      out.push(n);
      return Buffer.from(out);
    };
    const field = (tag, bytes) => Buffer.concat([Buffer.from([tag]), varint(bytes.length), bytes]);
    // Each level's two headers depend only on the length inside them.
    const heads = [];
    let length = 2;
    for (let i = 0; i < 100000; i++) {
      const item = Buffer.concat([Buffer.from([0x0a]), varint(length)]);
      const list = Buffer.concat([Buffer.from([0x3a]), varint(item.length + length)]);
      length += item.length + list.length;
      heads.push(item, list);
    }
    const value = Buffer.concat([...heads.reverse(), Buffer.from([0x08, 0x01])]); // null_value innermost
    assert.equal(value.length, length);
    const fake = await fakeDaemon((sock, env, id) => {
      sock.write(frame(Buffer.concat([Buffer.from([0x08]), varint(id), field(0x22, field(0x0a, value))])));
    });
    try {
      const client = await answer(connect(fake.path, { proto: PROTO }));
      const err = await failure(client.call('p', 'deep'));
      assert.ok(err instanceof ConnectionError, String(err));
      assert.match(err.message, /undecodable envelope \(\d+ bytes\): max depth exceeded/);
    } finally {
      await fake.close();
    }
  });

  test('an answer to no request, or of the wrong kind, or with no value, fails only what it must', async () => {
    const fake = await fakeDaemon((sock, env, id) => {
      const fn = env.call ? env.call.function : '';
      if (fn === 'stray') {
        send(sock, result(id + 1000, { intValue: 5 }));
        send(sock, result(id, { intValue: 6 }));
      } else if (fn === 'wrongbody') {
        send(sock, { id, plugins: { plugins: [] } });
      } else if (fn === 'novalue') {
        send(sock, { id, result: {} });
      } else {
        send(sock, result(id, { stringValue: 'fine' }));
      }
    });
    try {
      const client = await answer(connect(fake.path, { proto: PROTO }));
      const stray = [];
      client.on('protocolError', (e) => stray.push(e));
      assert.equal(await answer(client.call('p', 'stray')), 6);
      assert.equal(stray.length, 1);
      assert.match(stray[0].message, /answered id 100\d, which is not in flight/);
      const wrong = await failure(client.call('p', 'wrongbody'));
      assert.ok(wrong instanceof PlugboxError && !(wrong instanceof ConnectionError));
      assert.equal(wrong.kind, 'protocol');
      assert.match(wrong.message, /call p\.wrongbody \(id \d+\): the daemon answered with plugins/);
      const none = await failure(client.call('p', 'novalue'));
      assert.equal(none.kind, 'protocol');
      assert.match(none.message, /answer is not valid: value kind not set/);
      assert.equal(await answer(client.call('p', 'next')), 'fine');
      assert.equal(client.closed, false);
      client.destroy();
    } finally {
      await fake.close();
    }
  });

  test('answers that arrive one byte at a time are put together', async () => {
    const fake = await fakeDaemon(async (sock, env, id) => {
      const bytes = frame(Envelope.encode(result(id, { listValue: { items: [{ stringValue: 'slow' }, { intValue: -3 }] } })).finish());
      for (const b of bytes) {
        sock.write(Buffer.from([b]));
        await new Promise((r) => setTimeout(r, 1));
      }
    });
    try {
      const client = await answer(connect(fake.path, { proto: PROTO }));
      assert.deepStrictEqual(await answer(client.call('p', 'f')), ['slow', -3]);
      client.destroy();
    } finally {
      await fake.close();
    }
  });

  test('a connection that ends inside a frame says so', async () => {
    const fake = await fakeDaemon((sock, env, id) => {
      const bytes = frame(Envelope.encode(result(id, { stringValue: 'cut short' })).finish());
      sock.end(bytes.subarray(0, bytes.length - 3));
    });
    try {
      const client = await answer(connect(fake.path, { proto: PROTO }));
      const err = await failure(client.call('p', 'f'));
      assert.ok(err instanceof ConnectionError);
      assert.match(err.message, /the daemon closed the connection inside a frame/);
    } finally {
      await fake.close();
    }
  });

  test('a daemon that never says hello is given up on', async () => {
    const fake = await fakeDaemon(() => {}, { greet: false });
    try {
      // The fake answers the client's Hello, but never greets first: the
      // client counts the greeting and waits for the answer it never gets.
      const err = await failure(connect(fake.path, { proto: PROTO, connectTimeout: 200 }));
      assert.ok(err instanceof ConnectionError, String(err));
      assert.match(err.message, /no hello from the daemon within 200 ms/);
    } finally {
      await fake.close();
    }
  });
});

describe('a daemon older than protocol versions', { timeout: 20000 }, () => {
  test('the client falls back to version 1: calls work, list says what it needs', async () => {
    const seen = [];
    const fake = await fakeDaemon((sock, env, id) => {
      seen.push(env.body);
      send(sock, result(id, env.call.args[0]));
    }, { versionOne: true });
    try {
      const client = await answer(connect(fake.path, { proto: PROTO }));
      assert.equal(client.protocolVersion, 1);
      assert.deepStrictEqual(await answer(client.call('p', 'echo', [{ a: [1, 2] }])), { a: [1, 2] });
      const err = await failure(client.list());
      assert.equal(err.kind, 'bad_request');
      assert.match(err.message, /list needs protocol version 2; this daemon speaks 1/);
      assert.deepStrictEqual(seen, ['call']); // the list never left the client
      client.destroy();
      const strict = await failure(connect(fake.path, { proto: PROTO, fallback: false }));
      assert.ok(strict instanceof PlugboxError);
      assert.equal(strict.kind, 'bad_request');
    } finally {
      await fake.close();
    }
  });
});
