'use strict';
// plugbox.proto, loaded at run time with protobufjs (no generated code), so
// the client always speaks the schema of the plugbox it talks to. Where the
// file is: the `proto` option, else $PLUGBOX_PROTO, else the source tree this
// package sits in (clients/node -> proto/), else the installed copy under
// $(datadir)/plugbox for the usual prefixes.

const fs = require('fs');
const path = require('path');
const protobuf = require('protobufjs');

const INSTALLED = ['/usr/local/share/plugbox/plugbox.proto', '/usr/share/plugbox/plugbox.proto'];

// protobufjs stops at 100 nested messages (protoc's default), but a Value
// may nest 64 deep and each level of a map is three messages (Value,
// ValueMap, ValueMapEntry), under an Envelope and a Result or a HookAnswer.
// The bound stays: a deeper frame still fails to decode.
const NESTED_MESSAGES = 3 * 64 + 8;
for (const holder of [protobuf.util, protobuf.Reader]) {
  if (!(holder.recursionLimit >= NESTED_MESSAGES)) holder.recursionLimit = NESTED_MESSAGES;
}

function protoCandidates() {
  const list = [];
  if (process.env.PLUGBOX_PROTO) list.push(process.env.PLUGBOX_PROTO);
  list.push(path.join(__dirname, '..', '..', '..', 'proto', 'plugbox.proto'));
  return list.concat(INSTALLED);
}

function findProto(explicit) {
  if (explicit) return explicit;
  const tried = protoCandidates();
  const found = tried.find((p) => fs.existsSync(p));
  if (!found) {
    throw new Error(`plugbox.proto not found (tried ${tried.join(', ')}); ` +
      'pass the proto option or set PLUGBOX_PROTO');
  }
  return found;
}

// ERROR_KIND_NOT_FOUND -> "not_found", the names docs/protocol.md uses.
function kindName(enumName) {
  return enumName.replace(/^ERROR_KIND_/, '').toLowerCase();
}

const cache = new Map();

// loadSchema(path?) -> { path, root, Envelope, kindNames: Map(number -> name),
// kindNumbers: Map(name -> number), bodies: Set of Envelope body names,
// streams, orders }.
function loadSchema(protoPath) {
  const file = path.resolve(findProto(protoPath));
  let schema = cache.get(file);
  if (schema) return schema;
  const root = protobuf.loadSync(file);
  const Envelope = root.lookupType('plugbox.Envelope');
  const kinds = root.lookupEnum('plugbox.ErrorKind');
  const kindNames = new Map();
  const kindNumbers = new Map();
  for (const [name, number] of Object.entries(kinds.values)) {
    kindNames.set(number, kindName(name));
    kindNumbers.set(kindName(name), number);
  }
  const body = Envelope.oneofs.body;
  // Enums of later additions, when this plugbox.proto has them.
  const enumNames = (name, prefix) => {
    const e = root.lookup(`plugbox.${name}`);
    const out = new Map();
    if (e) for (const [n, v] of Object.entries(e.values)) out.set(v, n.replace(prefix, '').toLowerCase());
    return out;
  };
  const streams = enumNames('OutputStream', /^OUTPUT_STREAM_/);
  const orders = new Map([...enumNames('HookOrder', /^HOOK_ORDER_/)].map(([v, n]) => [n, v]));
  schema = {
    path: file,
    root,
    Envelope,
    kindNames,
    kindNumbers,
    bodies: new Set(body.oneof),
    streams, // number -> "stdout", "stderr", "supervisor", "log"
    orders, // "name", "priority", "given" -> number
    has: (typeName) => root.lookup(`plugbox.${typeName}`) !== null,
  };
  cache.set(file, schema);
  return schema;
}

module.exports = { loadSchema, findProto };
