'use strict';
// The control plane's error details (docs/errors.md): a google.rpc.Status in the
// `grpc-status-details-bin` trailer, carrying ErrorInfo, BadRequest and
// PreconditionFailure. These are google.rpc's published shapes, not part of protos/, so
// the few fields a client needs are read straight off the protobuf wire format here
// rather than shipping (or generating from) googleapis' .proto files.

const DETAILS_KEY = 'grpc-status-details-bin';
const DOMAIN = 'neural.mlops';
const TYPE_PREFIX = 'type.googleapis.com/';

function readVarint(buf, start) {
  let value = 0;
  let scale = 1;
  let pos = start;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated varint');
    const byte = buf[pos++];
    value += (byte & 0x7f) * scale; // multiply, not shift: values past 2^31 stay exact
    if (!(byte & 0x80)) return [value, pos];
    scale *= 128;
  }
}

/** Every (field number, value) of one message: varints as numbers, the rest as Buffers. */
function fields(buf) {
  const out = [];
  let pos = 0;
  while (pos < buf.length) {
    const [key, afterKey] = readVarint(buf, pos);
    const number = Math.floor(key / 8);
    const wireType = key % 8;
    pos = afterKey;
    if (wireType === 0) {
      const [value, next] = readVarint(buf, pos);
      out.push([number, value]);
      pos = next;
    } else if (wireType === 2) {
      const [length, start] = readVarint(buf, pos);
      if (start + length > buf.length) throw new Error('truncated field');
      out.push([number, buf.subarray(start, start + length)]);
      pos = start + length;
    } else if (wireType === 1 || wireType === 5) {
      pos += wireType === 1 ? 8 : 4; // fixed64 / fixed32: none in the shapes read here
    } else {
      throw new Error(`unsupported wire type ${wireType}`);
    }
  }
  return out;
}

/** The string fields of a flat message, by field number. */
function strings(buf) {
  const out = {};
  for (const [number, value] of fields(buf)) {
    if (Buffer.isBuffer(value)) out[number] = value.toString('utf8');
  }
  return out;
}

function errorInfo(buf) {
  const info = { reason: '', domain: '', metadata: {} };
  for (const [number, value] of fields(buf)) {
    if (number === 1) info.reason = value.toString('utf8');
    else if (number === 2) info.domain = value.toString('utf8');
    else if (number === 3) {
      const entry = strings(value); // map<string, string> entry: key = 1, value = 2
      info.metadata[entry[1] || ''] = entry[2] || '';
    }
  }
  return info;
}

function repeated(buf, shape) {
  return fields(buf).filter(([number]) => number === 1).map(([, value]) => shape(strings(value)));
}

/**
 * Decode a google.rpc.Status (a Buffer) into
 * {code, message, reason, domain, metadata, fieldViolations, preconditions}.
 * Throws on bytes that are not a protobuf message.
 */
function decodeStatus(buf) {
  const status = {
    code: 0, message: '', reason: '', domain: '', metadata: {},
    fieldViolations: [], preconditions: [],
  };
  for (const [number, value] of fields(buf)) {
    if (number === 1) status.code = value;
    else if (number === 2) status.message = value.toString('utf8');
    else if (number === 3) {
      const any = fields(value);
      const typeUrl = (any.find(([n]) => n === 1) || [0, Buffer.alloc(0)])[1].toString('utf8');
      const body = (any.find(([n]) => n === 2) || [0, Buffer.alloc(0)])[1];
      const type = typeUrl.startsWith(TYPE_PREFIX) ? typeUrl.slice(TYPE_PREFIX.length) : typeUrl;
      if (type === 'google.rpc.ErrorInfo') {
        Object.assign(status, errorInfo(body));
      } else if (type === 'google.rpc.BadRequest') {
        status.fieldViolations = repeated(body, (f) => (
          { field: f[1] || '', description: f[2] || '', reason: f[3] || '' }));
      } else if (type === 'google.rpc.PreconditionFailure') {
        status.preconditions = repeated(body, (f) => (
          { type: f[1] || '', subject: f[2] || '', description: f[3] || '' }));
      }
    }
  }
  return status;
}

/** The decoded details of a failed call's metadata (grpc-js Metadata), or null. */
function statusFromMetadata(metadata) {
  const values = metadata ? metadata.get(DETAILS_KEY) : [];
  if (!values || !values.length) return null;
  try {
    return decodeStatus(Buffer.from(values[0]));
  } catch (err) {
    return null; // a proxy's or another server's malformed trailer: the status code still holds
  }
}

module.exports = { DETAILS_KEY, DOMAIN, decodeStatus, statusFromMetadata };
