'use strict';
// A connection to `plugbox serve` (docs/protocol.md): Hello negotiation,
// then requests pipelined under ids of their own, each a promise settled by
// the answer that carries its id, in whatever order answers come. The
// daemon's bytes are checked as any peer's: a frame over 16 MiB, or one
// that does not decode, ends the connection and fails what was pending with
// a ConnectionError; the client itself never throws for what it reads.

const EventEmitter = require('events');
const net = require('net');
const { loadSchema } = require('./schema');
const { FRAME_MAX, FrameError, FrameReader, frame } = require('./frames');
const { toValue, fromValue, toKeywords, fromInt } = require('./values');
const { PlugboxError, ConnectionError } = require('./errors');

const PROTOCOL_VERSION = 2; // the highest this client speaks
const MAX_SAFE_HIGH = 0x1fffff; // a Long whose high word is over this is no id of ours

function idOf(long) {
  if (typeof long === 'number') return long;
  if (long.high >>> 0 > MAX_SAFE_HIGH) return -1;
  return long.toNumber();
}

function pluginSummary(p) {
  return { name: p.name, state: p.state };
}

function pluginInfo(p) {
  return {
    name: p.name,
    state: p.state,
    policyFile: p.policyFile,
    layout: p.layout,
    version: p.version,
    exports: p.exports.slice(),
    entryPoints: p.entryPoints.map((e) => ({ group: e.group, name: e.name, value: e.value })),
    sysPath: p.sysPath.slice(),
    layers: p.layers.slice(),
    priority: p.priority,
  };
}

class Client extends EventEmitter {
  // Use Client.connect(); the constructor takes a connected socket.
  constructor(socket, options = {}) {
    super();
    this.schema = loadSchema(options.proto);
    this.Envelope = this.schema.Envelope;
    this.maps = options.maps || 'auto';
    this.socketPath = options.socketPath || '';
    this.protocolVersion = 1; // agreed with the daemon
    this.maxProtocolVersion = 1; // the highest the daemon speaks
    this.closed = false;
    this._sock = socket;
    this._reader = new FrameReader(options.maxFrame || FRAME_MAX);
    this._pending = new Map(); // id -> request
    this._nextId = 1;
    this._corked = false;
    this._ending = false;
    this._lastDaemonError = null; // an id-0 Error, named when the connection then ends
    this._socketError = null;
    this._want = Math.min(options.protocolVersion || PROTOCOL_VERSION, PROTOCOL_VERSION);
    this._hellos = 0;
    this._ready = new Promise((resolve, reject) => {
      this._handshake = { resolve, reject };
    });
    this._ready.catch(() => {}); // settled through connect()
    socket.on('data', (chunk) => this._onData(chunk));
    socket.on('error', (err) => {
      this._socketError = err;
    });
    socket.on('close', () => this._onClose());
    if (this._want > 1) this._send({ id: 0, hello: { protocolVersion: this._want } });
  }

  // connect(socketPath, options) -> Promise<Client>, once Hello is agreed.
  // options: protocolVersion (default 2), proto (path of plugbox.proto),
  // connectTimeout (ms, default 10000), maps ("auto" or "map"), maxFrame.
  // A daemon that predates protocol versions refuses the Hello; the client
  // then connects again speaking version 1 (calls only), unless fallback is false.
  static async connect(socketPath, options = {}) {
    try {
      return await open(socketPath, options);
    } catch (err) {
      if (!err.versionOneDaemon || options.protocolVersion === 1 || options.fallback === false) throw err;
      return open(socketPath, { ...options, protocolVersion: 1 });
    }
  }

  // call(plugin, function, args = [], { kwargs, timeout }) -> Promise of the
  // result; rejects with a PlugboxError. The promise's `id` is the request's.
  call(plugin, fn, args = [], options = {}) {
    return this._request('call', options, () => ({
      plugin,
      function: fn,
      args: args.map((a) => toValue(a)),
      kwargs: toKeywords(options.kwargs),
      timeout: checkTimeout(options.timeout),
    }), { what: `call ${plugin}.${fn}`, plugin, answers: ['result'] });
  }

  // list() -> Promise<[{name, state}]>: every plugin directory, by name.
  list() {
    return this._request('list', {}, () => ({}), { what: 'list', answers: ['plugins'], version: 2 });
  }

  // describe(plugin) -> Promise<{name, state, policyFile, layout, version,
  // exports, entryPoints, sysPath, layers, priority}>.
  describe(plugin) {
    return this._request('describe', {}, () => ({ plugin }), {
      what: `describe ${plugin}`, plugin, answers: ['pluginInfo'], version: 2,
    });
  }

  // Requests in flight on this connection.
  get pending() {
    return this._pending.size;
  }

  // close() -> Promise: sends nothing more; the daemon answers what is in
  // flight, then closes. destroy() ends the connection at once.
  close() {
    if (this.closed) return Promise.resolve();
    const done = new Promise((resolve) => this.once('close', resolve));
    if (!this._ending) {
      this._ending = true;
      this._sock.end();
    }
    return done;
  }

  destroy(reason = 'the client closed the connection') {
    if (this.closed) return;
    this._failAll(reason);
    this._sock.destroy();
  }

  // ---- requests --------------------------------------------------------------

  _request(body, options, build, info) {
    let request;
    const promise = new Promise((resolve, reject) => {
      request = { resolve, reject, ...info };
    });
    if (this.closed || this._ending) {
      request.reject(new ConnectionError(`${info.what} failed: the connection to the daemon is ${this.closed ? 'closed' : 'closing'}`));
      return promise;
    }
    if (info.version && this.protocolVersion < info.version) {
      request.reject(new PlugboxError('bad_request',
        `${info.what} needs protocol version ${info.version}; this daemon speaks ${this.protocolVersion}`));
      return promise;
    }
    const id = this._nextId++;
    promise.id = id;
    let payload;
    try {
      payload = build();
    } catch (err) {
      request.reject(new PlugboxError('bad_request', `${info.what}: ${err.message}`, { requestId: id }));
      return promise;
    }
    request.id = id;
    this._pending.set(id, request);
    try {
      this._send({ id, [body]: payload });
    } catch (err) {
      this._pending.delete(id);
      request.reject(new PlugboxError('bad_request', `${info.what}: ${err.message}`, { requestId: id }));
    }
    return promise;
  }

  _send(envelope) {
    const payload = this.Envelope.encode(envelope).finish();
    if (payload.length > this._reader.max) {
      throw new RangeError(`the request is ${payload.length} bytes, over the frame limit of ${this._reader.max}`);
    }
    // Frames written in one turn of the event loop leave in one write.
    if (!this._corked) {
      this._corked = true;
      this._sock.cork();
      process.nextTick(() => {
        this._corked = false;
        this._sock.uncork();
      });
    }
    this._sock.write(frame(payload));
  }

  // ---- answers ---------------------------------------------------------------

  _onData(chunk) {
    if (this.closed) return;
    try {
      this._reader.push(chunk, (payload) => this._onFrame(payload));
    } catch (err) {
      const why = err instanceof FrameError ? `the daemon ${err.message}` : `the client failed on an answer: ${err.message}`;
      this._failAll(why);
      this._sock.destroy();
    }
  }

  _onFrame(payload) {
    let env;
    try {
      env = this.Envelope.decode(payload);
    } catch (err) {
      throw new FrameError(`sent an undecodable envelope (${payload.length} bytes): ${err.message}`);
    }
    const id = idOf(env.id);
    if (id === 0) {
      this._onControl(env);
      return;
    }
    const request = this._pending.get(id);
    if (!request) {
      this.emit('protocolError', new PlugboxError('protocol', `the daemon answered id ${env.id}, which is not in flight`));
      return;
    }
    this._answer(request, env);
  }

  _answer(request, env) {
    const body = env.body;
    if (body === 'error') {
      this._settle(request, this._error(env.error, request));
      return;
    }
    if (!request.answers.includes(body)) {
      this._settle(request, new PlugboxError('protocol',
        `${request.what} (id ${request.id}): the daemon answered with ${body || 'no body'}`, { requestId: request.id }));
      return;
    }
    let value;
    try {
      if (body === 'result') value = fromValue(env.result.value, { maps: this.maps });
      else if (body === 'plugins') value = env.plugins.plugins.map(pluginSummary);
      else if (body === 'pluginInfo') value = pluginInfo(env.pluginInfo);
    } catch (err) {
      this._settle(request, new PlugboxError('protocol',
        `${request.what} (id ${request.id}): the daemon's answer is not valid: ${err.message}`, { requestId: request.id }));
      return;
    }
    this._settle(request, null, value);
  }

  _settle(request, err, value) {
    this._pending.delete(request.id);
    if (err) request.reject(err);
    else request.resolve(value);
  }

  _error(e, request) {
    const kind = this.schema.kindNames.get(e.kind) || `kind_${e.kind}`;
    return new PlugboxError(kind, e.message || `${request ? request.what : 'request'} failed (${kind})`, {
      remoteType: e.type,
      traceback: e.traceback,
      plugin: e.plugin || (request && request.plugin) || '',
      syscall: e.syscall,
      syscallArgs: (e.syscallArgs || []).map((a) => BigInt(a.toString())),
      rule: e.rule,
      policyFile: e.policyFile,
      policyLine: e.policyLine,
      requestId: request ? request.id : 0,
    });
  }

  // Id 0: the daemon's Hellos, and errors that belong to no request.
  _onControl(env) {
    if (env.body === 'hello') {
      this._hellos += 1;
      const h = env.hello;
      if (this._hellos === 1 && this._want === 1) {
        this._agree(1, 1);
      } else if (this._hellos === 2 && this._want > 1) {
        this._agree(h.protocolVersion, h.maxProtocolVersion || h.protocolVersion);
      } else if (this._hellos > 2 || (this._hellos === 2 && this._want === 1)) {
        this.emit('protocolError', new PlugboxError('protocol', 'the daemon sent a hello it was not asked for'));
      }
      return;
    }
    if (env.body === 'error') {
      const err = this._error(env.error, null);
      if (this._handshake) {
        if (err.kind === 'bad_request' && this._hellos <= 1) err.versionOneDaemon = true;
        this._handshake.reject(err);
        this._handshake = null;
        return;
      }
      this._lastDaemonError = err;
      this.emit('protocolError', err);
      return;
    }
    this.emit('protocolError', new PlugboxError('protocol', `the daemon sent ${env.body || 'no body'} under id 0`));
  }

  _agree(version, max) {
    if (!this._handshake) return;
    if (version < 1 || version > this._want) {
      this._handshake.reject(new PlugboxError('protocol', `the daemon agreed to protocol version ${version}; this client asked for ${this._want}`));
    } else {
      this.protocolVersion = version;
      this.maxProtocolVersion = max;
      this._handshake.resolve(this);
    }
    this._handshake = null;
  }

  _onClose() {
    if (this.closed) return;
    let why = 'the daemon closed the connection';
    if (this._reader.partial > 0) why += ` inside a frame (${this._reader.partial} bytes of it came)`;
    if (this._lastDaemonError) why += `: ${this._lastDaemonError.message}`;
    else if (this._socketError) why += ` (${this._socketError.message})`;
    this._failAll(why);
  }

  // The connection is over: everything pending fails with a ConnectionError.
  _failAll(why) {
    if (this.closed) return;
    this.closed = true;
    const cause = this._lastDaemonError || this._socketError || undefined;
    if (this._handshake) {
      this._handshake.reject(new ConnectionError(`no hello agreed with the daemon: ${why}`, { cause }));
      this._handshake = null;
    }
    const pending = [...this._pending.values()];
    this._pending.clear();
    for (const request of pending) {
      request.reject(new ConnectionError(`${request.what} (id ${request.id}) failed: ${why}`,
        { cause, plugin: request.plugin, requestId: request.id }));
    }
    this.closeReason = why;
    process.nextTick(() => this.emit('close', why));
  }
}

function checkTimeout(t) {
  if (t === undefined || t === null) return 0;
  if (typeof t !== 'number' || !(t >= 0) || !Number.isFinite(t)) throw new RangeError(`timeout must be a number of seconds >= 0, not ${t}`);
  return t;
}

function open(socketPath, options) {
  return new Promise((resolve, reject) => {
    const sock = net.createConnection(socketPath);
    let client;
    const timeout = options.connectTimeout === undefined ? 10000 : options.connectTimeout;
    const timer = setTimeout(() => {
      if (client) client.destroy(`no hello from the daemon within ${timeout} ms`);
      else sock.destroy();
      reject(new ConnectionError(`${socketPath}: no hello from the daemon within ${timeout} ms`));
    }, timeout);
    const fail = (err) => {
      clearTimeout(timer);
      reject(err);
    };
    sock.once('error', (err) => {
      if (!client) fail(new ConnectionError(`cannot connect to ${socketPath}: ${err.message}`, { cause: err }));
    });
    sock.once('connect', () => {
      try {
        client = new Client(sock, { ...options, socketPath });
      } catch (err) {
        sock.destroy();
        fail(err);
        return;
      }
      client._ready.then((c) => {
        clearTimeout(timer);
        resolve(c);
      }, (err) => {
        client.destroy(err.message);
        fail(err);
      });
    });
  });
}

module.exports = { Client, PROTOCOL_VERSION, fromInt };
