'use strict';
// JavaScript values <-> plugbox.Value (null, bool, int, float, string, bytes,
// list, map; docs/protocol.md). Integers travel as sint64: a JS number that
// is a safe integer goes as an int, a BigInt as an int when it fits 64 bits;
// any other number goes as a float (wrap an integral number in Float to send
// it as one). Coming back, an int is a number when it is safe, else a BigInt;
// a map whose keys are all strings is a plain object, any other a Map.

const Long = require('protobufjs').util.Long;

const MAX_DEPTH = 64; // the daemon refuses deeper Values (bad_request)
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

// A number sent as a float even when it is integral (Python sees 1.0, not 1).
class Float {
  constructor(value) {
    this.value = Number(value);
  }
}

function toValue(x, depth = 1) {
  if (depth > MAX_DEPTH) throw new RangeError(`value nested deeper than ${MAX_DEPTH} levels`);
  if (x === null || x === undefined) return { nullValue: true };
  switch (typeof x) {
    case 'boolean':
      return { boolValue: x };
    case 'number':
      if (Number.isSafeInteger(x) && !Object.is(x, -0)) return { intValue: x };
      return { floatValue: x };
    case 'bigint':
      if (x < INT64_MIN || x > INT64_MAX) throw new RangeError(`integer ${x} does not fit in 64 bits`);
      return { intValue: Long.fromString(x.toString()) };
    case 'string':
      return { stringValue: x };
    default:
      break;
  }
  if (x instanceof Float) return { floatValue: x.value };
  if (x instanceof Uint8Array) return { bytesValue: x };
  if (Array.isArray(x)) return { listValue: { items: x.map((item) => toValue(item, depth + 1)) } };
  if (x instanceof Map) {
    const entries = [];
    for (const [k, v] of x) entries.push({ key: toValue(k, depth + 1), value: toValue(v, depth + 1) });
    return { mapValue: { entries } };
  }
  const proto = Object.getPrototypeOf(x);
  if (typeof x === 'object' && (proto === Object.prototype || proto === null)) {
    const entries = Object.keys(x).map((k) => ({ key: { stringValue: k }, value: toValue(x[k], depth + 1) }));
    return { mapValue: { entries } };
  }
  const what = typeof x === 'object' ? (x.constructor && x.constructor.name) || 'object' : typeof x;
  throw new TypeError(`no plugbox value for ${what}`);
}

function fromInt(n) {
  if (typeof n === 'number') return n;
  const big = BigInt(n.toString()); // a Long
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

function setKey(obj, key, value) {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

// opts.maps: "auto" (default: object when every key is a string) or "map".
function fromValue(v, opts = {}, depth = 1) {
  if (depth > MAX_DEPTH + 1) throw new RangeError(`value nested deeper than ${MAX_DEPTH} levels`);
  if (!v) throw new TypeError('value kind not set');
  switch (v.kind) {
    case 'nullValue':
      return null;
    case 'boolValue':
      return v.boolValue;
    case 'intValue':
      return fromInt(v.intValue);
    case 'floatValue':
      return v.floatValue;
    case 'stringValue':
      return v.stringValue;
    case 'bytesValue':
      return Buffer.from(v.bytesValue.buffer, v.bytesValue.byteOffset, v.bytesValue.length);
    case 'listValue':
      return v.listValue.items.map((item) => fromValue(item, opts, depth + 1));
    case 'mapValue': {
      const entries = v.mapValue.entries.map((e) => [fromValue(e.key, opts, depth + 1), fromValue(e.value, opts, depth + 1)]);
      if (opts.maps !== 'map' && entries.every(([k]) => typeof k === 'string')) {
        const obj = {};
        for (const [k, val] of entries) setKey(obj, k, val);
        return obj;
      }
      return new Map(entries);
    }
    default:
      throw new TypeError('value kind not set');
  }
}

// kwargs: a plain object or a Map of name -> value.
function toKeywords(kwargs) {
  if (!kwargs) return [];
  const pairs = kwargs instanceof Map ? [...kwargs] : Object.entries(kwargs);
  return pairs.map(([name, value]) => {
    if (typeof name !== 'string') throw new TypeError('keyword argument names are strings');
    return { name, value: toValue(value) };
  });
}

function fromKeywords(kwargs, opts) {
  const obj = {};
  for (const kw of kwargs || []) setKey(obj, kw.name, fromValue(kw.value, opts));
  return obj;
}

module.exports = { Float, toValue, fromValue, toKeywords, fromKeywords, fromInt, MAX_DEPTH };
