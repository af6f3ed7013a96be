'use strict';
// plugbox-client: call sandboxed Python plugins through `plugbox serve`.
// See README.md; the protocol is docs/protocol.md in the plugbox tree.

const { Client, PROTOCOL_VERSION } = require('./client');
const { PlugboxError, ConnectionError } = require('./errors');
const { Float } = require('./values');
const { loadSchema, findProto } = require('./schema');
const { FRAME_MAX } = require('./frames');

module.exports = {
  connect: (socketPath, options) => Client.connect(socketPath, options),
  Client,
  PlugboxError,
  ConnectionError,
  Float,
  loadSchema,
  findProto,
  FRAME_MAX,
  PROTOCOL_VERSION,
};
