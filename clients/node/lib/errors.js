'use strict';
// The errors a request can end in. PlugboxError carries the daemon's
// plugbox.Error as fields (docs/protocol.md, "Errors"); ConnectionError is
// the client's own: the connection ended, or the daemon broke the framing,
// with the request still pending.

class PlugboxError extends Error {
  constructor(kind, message, fields = {}) {
    super(message);
    this.name = 'PlugboxError';
    this.kind = kind; // "exception", "not_found", "violation", "timeout", ...
    this.remoteType = fields.remoteType || ''; // the Python exception type
    this.traceback = fields.traceback || '';
    this.plugin = fields.plugin || '';
    this.syscall = fields.syscall || '';
    this.syscallArgs = fields.syscallArgs || []; // BigInts: raw registers
    this.rule = fields.rule || '';
    this.policyFile = fields.policyFile || '';
    this.policyLine = fields.policyLine || 0;
    this.requestId = fields.requestId || 0;
  }
}

class ConnectionError extends PlugboxError {
  constructor(message, fields = {}) {
    super('disconnected', message, fields);
    this.name = 'ConnectionError';
    if (fields.cause) this.cause = fields.cause;
  }
}

module.exports = { PlugboxError, ConnectionError };
