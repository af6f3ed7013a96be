'use strict';
// A connection to `plugbox serve` (docs/protocol.md): Hello negotiation,
// then requests pipelined under ids of their own, each a promise settled by
// the answer that carries its id, in whatever order answers come; the
// output a request makes, streamed to it; cancels; and host functions the
// client offers, which plugins call back while they run its requests. The
// daemon's bytes are checked as any peer's: a frame over 16 MiB, or one
// that does not decode, ends the connection and fails what was pending with
// a ConnectionError; the client itself never throws for what it reads.

const EventEmitter = require('events');
const net = require('net');
const { loadSchema } = require('./schema');
const { FRAME_MAX, FrameError, FrameReader, frame } = require('./frames');
const { toValue, fromValue, toKeywords, fromKeywords, fromInt } = require('./values');
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
    this.streamOutput = Boolean(options.streamOutput) && this._want > 1;
    this._hostFunctions = new Map(); // name -> function
    this._hostCalls = new Map(); // host call id -> {name, plugin}, until answered
    this._ready = new Promise((resolve, reject) => {
      this._handshake = { resolve, reject };
    });
    this._ready.catch(() => {}); // settled through connect()
    socket.on('data', (chunk) => this._onData(chunk));
    socket.on('error', (err) => {
      this._socketError = err;
    });
    socket.on('close', () => this._onClose());
    if (this._want > 1) {
      this._send({
        id: 0,
        hello: {
          protocolVersion: this._want,
          streamOutput: this.streamOutput,
          streamIdleOutput: Boolean(options.idleOutput),
        },
      });
    }
  }

  // connect(socketPath, options) -> Promise<Client>, once Hello is agreed
  // (and the host functions offered). options: protocolVersion (default 2),
  // proto (path of plugbox.proto), connectTimeout (ms, default 10000), maps
  // ("auto" or "map"), maxFrame, streamOutput (the output of this
  // connection's requests: 'output' events and onOutput; the daemon then
  // runs them without pipelining), idleOutput (also what plugins print
  // outside any request), hostFunctions ({name: function}, see register).
  // A daemon that predates protocol versions refuses the Hello; the client
  // then connects again speaking version 1 (calls only), unless fallback is false.
  static async connect(socketPath, options = {}) {
    let client;
    try {
      client = await open(socketPath, options);
    } catch (err) {
      if (!err.versionOneDaemon || options.protocolVersion === 1 || options.fallback === false) throw err;
      client = await open(socketPath, { ...options, protocolVersion: 1 });
    }
    if (options.hostFunctions && Object.keys(options.hostFunctions).length) {
      try {
        await client.register(options.hostFunctions);
      } catch (err) {
        client.destroy(err.message);
        throw err;
      }
    }
    return client;
  }

  // call(plugin, function, args = [], { kwargs, timeout, signal, onOutput })
  // -> Promise of the result; rejects with a PlugboxError. The promise's
  // `id` is the request's (for cancel). signal: an AbortSignal that cancels
  // the call. onOutput(record): what the plugin prints and logs while it
  // runs this call (needs streamOutput), each record before the answer.
  call(plugin, fn, args = [], options = {}) {
    return this._request('call', options, () => ({
      plugin,
      function: fn,
      args: toArgs(args),
      kwargs: toKeywords(options.kwargs),
      timeout: checkTimeout(options.timeout),
      parent: options.parent || 0,
    }), { what: `call ${plugin}.${fn}`, plugin, answers: ['result'] });
  }

  // hook(group, args = [], { kwargs, timeout, firstResult, concurrent,
  // allowUnknown, pruneKwargs, order: "name" | "priority" | "given",
  // plugins, signal, onOutput }) -> Promise of one answer per entry point,
  // in order: {plugin, name, value} or {plugin, name, error: PlugboxError}.
  // With firstResult the answers stop at the first value other than null.
  hook(group, args = [], options = {}) {
    return this._request('hook', options, () => {
      const order = this.schema.orders.get(options.order || 'name');
      if (order === undefined) throw new RangeError(`order must be one of ${[...this.schema.orders.keys()].join(', ')}, not ${options.order}`);
      return {
        group,
        args: toArgs(args),
        kwargs: toKeywords(options.kwargs),
        timeout: checkTimeout(options.timeout),
        firstResult: Boolean(options.firstResult),
        concurrent: Boolean(options.concurrent),
        allowUnknown: Boolean(options.allowUnknown),
        pruneKwargs: Boolean(options.pruneKwargs),
        order,
        plugins: options.plugins || [],
      };
    }, { what: `hook ${group}`, answers: ['hookResults'], version: 2, body: 'hook' });
  }

  // cancel(request) -> whether it was in flight: request is a promise this
  // client returned, or its id. The request then rejects with kind
  // "cancelled" (or settles as it would have, if it ended first).
  cancel(request) {
    const id = typeof request === 'number' ? request : request && request.id;
    if (!this._pending.has(id) || this.closed || this.protocolVersion < 2) return false;
    this._send({ id: 0, cancel: { callId: id } });
    return true;
  }

  // register(name, fn) or register({name: fn, ...}) -> Promise, once the
  // daemon has them. A plugin whose policy grants NAME (@host-call NAME)
  // and calls plugbox.host.NAME(...) while it runs one of this connection's
  // requests gets fn's result (a promise is awaited). fn gets the plugin's
  // arguments, and as `this` {name, plugin, callId, kwargs, call(function,
  // args, options)}: call() makes a call to the same plugin nested in the
  // host call. What fn throws is raised in the plugin: as the Python type
  // in err.pythonType, else TypeError for a TypeError, ValueError for a
  // RangeError, and plugbox.HostError for anything else.
  register(name, fn) {
    const entries = typeof name === 'string' ? [[name, fn]] : Object.entries(name || {});
    for (const [n, f] of entries) {
      if (typeof f !== 'function') {
        return Promise.reject(new TypeError(`host function ${n} is not a function`));
      }
    }
    const names = entries.map(([n]) => n);
    const done = this._request('hostFunctions', {}, () => ({ names }), {
      what: `offering host functions ${names.join(', ')}`, answers: ['result'], version: 2, body: 'hostFunctions',
    });
    // Known at once: a request sent right after this one may be called back
    // before the daemon's answer to this one is read.
    const before = new Map(entries.map(([n]) => [n, this._hostFunctions.get(n)]));
    for (const [n, f] of entries) this._hostFunctions.set(n, f);
    return done.then(() => undefined, (err) => {
      for (const [n, f] of before) {
        if (f) this._hostFunctions.set(n, f);
        else this._hostFunctions.delete(n);
      }
      throw err;
    });
  }

  // list() -> Promise<[{name, state}]>: every plugin directory, by name.
  list() {
    return this._request('list', {}, () => ({}), { what: 'list', answers: ['plugins'], version: 2, body: 'list' });
  }

  // describe(plugin) -> Promise<{name, state, policyFile, layout, version,
  // exports, entryPoints, sysPath, layers, priority}>. options: signal.
  describe(plugin, options = {}) {
    return this._request('describe', options, () => ({ plugin }), {
      what: `describe ${plugin}`, plugin, answers: ['pluginInfo'], version: 2, body: 'describe',
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
    if (info.body && !this.schema.bodies.has(info.body)) {
      request.reject(new PlugboxError('bad_request', `${info.what}: ${this.schema.path} has no ${info.body} message (an older plugbox.proto)`));
      return promise;
    }
    const id = this._nextId++;
    promise.id = id;
    let payload;
    try {
      if (options.onOutput && !this.streamOutput) throw new Error('onOutput needs a connection made with streamOutput: true');
      if (options.signal && options.signal.aborted) throw new Error('the request was aborted before it was sent');
      payload = build();
    } catch (err) {
      request.reject(new PlugboxError('bad_request', `${info.what}: ${err.message}`, { requestId: id }));
      return promise;
    }
    request.id = id;
    request.onOutput = options.onOutput;
    this._pending.set(id, request);
    try {
      this._send({ id, [body]: payload });
    } catch (err) {
      this._pending.delete(id);
      request.reject(new PlugboxError('bad_request', `${info.what}: ${err.message}`, { requestId: id }));
      return promise;
    }
    if (options.signal) {
      const onAbort = () => this.cancel(id);
      options.signal.addEventListener('abort', onAbort, { once: true });
      request.unlisten = () => options.signal.removeEventListener('abort', onAbort);
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
    if (env.body === 'hostCall') {
      this._onHostCall(id, env.hostCall);
      return;
    }
    const request = this._pending.get(id);
    if (!request) {
      this._emitSafely('protocolError', new PlugboxError('protocol', `the daemon answered id ${env.id}, which is not in flight`));
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
      else if (body === 'hookResults') value = env.hookResults.answers.map((a) => this._hookAnswer(a, request));
    } catch (err) {
      this._settle(request, new PlugboxError('protocol',
        `${request.what} (id ${request.id}): the daemon's answer is not valid: ${err.message}`, { requestId: request.id }));
      return;
    }
    this._settle(request, null, value);
  }

  _hookAnswer(a, request) {
    if (a.outcome === 'error') return { plugin: a.plugin, name: a.name, error: this._error(a.error, { ...request, plugin: a.plugin }) };
    return { plugin: a.plugin, name: a.name, value: fromValue(a.value, { maps: this.maps }) };
  }

  _settle(request, err, value) {
    this._pending.delete(request.id);
    if (request.unlisten) request.unlisten();
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
        this._emitSafely('protocolError', new PlugboxError('protocol', 'the daemon sent a hello it was not asked for'));
      }
      return;
    }
    if (env.body === 'output') {
      this._onOutput(env.output);
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
      this._emitSafely('protocolError', err);
      return;
    }
    this._emitSafely('protocolError', new PlugboxError('protocol', `the daemon sent ${env.body || 'no body'} under id 0`));
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

  // An Output: to its request's onOutput, and to 'output' listeners.
  _onOutput(o) {
    const callId = idOf(o.callId);
    const record = {
      callId,
      plugin: o.plugin,
      stream: this.schema.streams.get(o.stream) || `stream_${o.stream}`,
      text: o.text,
      level: o.level,
      logger: o.logger,
      excText: o.excText,
      dropped: Number(o.dropped),
    };
    if (o.stream === 0) record.stream = '';
    const request = callId ? this._pending.get(callId) : null;
    if (request && request.onOutput) {
      try {
        request.onOutput(record);
      } catch (err) {
        process.nextTick(() => {
          throw err;
        });
      }
    }
    this._emitSafely('output', record);
  }

  // A listener that throws must not be taken for a bad answer (which would
  // end the connection): its exception is thrown on its own, as an
  // EventEmitter listener's would be outside the client.
  _emitSafely(event, arg) {
    try {
      this.emit(event, arg);
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }

  // A plugin calls a host function this client offered: run it, answer
  // under the host call's id exactly once (unless the connection is gone).
  _onHostCall(id, hc) {
    const fn = this._hostFunctions.get(hc.name);
    const callId = idOf(hc.callId);
    this._hostCalls.set(id, { name: hc.name, plugin: hc.plugin });
    const answer = (outcome) => {
      if (!this._hostCalls.delete(id) || this.closed) return;
      try {
        this._send({ id, hostResult: outcome });
      } catch (err) {
        this._send({ id, hostResult: { error: hostError(new TypeError(`host function ${hc.name} returned what plugbox cannot send: ${err.message}`)) } });
      }
    };
    if (!fn) {
      answer({ error: { kind: 1, type: 'LookupError', message: `this client offers no host function '${hc.name}'` } });
      return;
    }
    const client = this;
    const ctx = {
      name: hc.name,
      plugin: hc.plugin,
      callId,
      hostCallId: id,
      kwargs: {},
      call(func, args = [], options = {}) {
        return client.call(hc.plugin, func, args, { ...options, parent: id });
      },
    };
    let args;
    try {
      args = hc.args.map((a) => fromValue(a, { maps: this.maps }));
      ctx.kwargs = fromKeywords(hc.kwargs, { maps: this.maps });
    } catch (err) {
      answer({ error: hostError(new TypeError(`host function ${hc.name}: ${err.message}`)) });
      return;
    }
    Promise.resolve()
      .then(() => fn.apply(ctx, args))
      .then((value) => {
        let encoded;
        try {
          encoded = toValue(value);
        } catch (err) {
          answer({ error: hostError(new TypeError(`host function ${hc.name} returned what plugbox cannot send: ${err.message}`)) });
          return;
        }
        answer({ value: encoded });
      }, (err) => answer({ error: hostError(err) }));
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
    this._hostCalls.clear();
    for (const request of pending) {
      request.reject(new ConnectionError(`${request.what} (id ${request.id}) failed: ${why}`,
        { cause, plugin: request.plugin, requestId: request.id }));
    }
    this.closeReason = why;
    process.nextTick(() => this.emit('close', why));
  }
}

// What a host function threw, as the Error the plugin raises (its type a
// Python builtin's name, or anything else for plugbox.HostError).
function hostError(err) {
  let type = 'RuntimeError';
  if (err && typeof err.pythonType === 'string') type = err.pythonType;
  else if (err instanceof TypeError) type = 'TypeError';
  else if (err instanceof RangeError) type = 'ValueError';
  else if (err && err.name) type = err.name;
  const message = err && err.message !== undefined ? String(err.message) : String(err);
  return { kind: 1, type, message };
}

function toArgs(args) {
  if (!Array.isArray(args)) throw new TypeError('the arguments are an array');
  return args.map((a) => toValue(a));
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
