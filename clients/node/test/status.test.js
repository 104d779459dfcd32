'use strict';
// The error details decoder against bytes the Python control plane produced
// (neural.mlops.server.grpc_errors.status_details(...).SerializeToString().hex()).
const test = require('node:test');
const assert = require('node:assert/strict');
const grpc = require('@grpc/grpc-js');
const { decodeStatus, statusFromMetadata, DETAILS_KEY } = require('../src/status');
const { MLOpsError } = require('../src/index');

// InvalidArgument("version '../2' is not a valid name", field="version"), request id req-1
const INVALID_VERSION = Buffer.from(
  '0803122276657273696f6e20272e2e2f3227206973206e6f7420612076616c6964206e616d651a700a2874'
  + '7970652e676f6f676c65617069732e636f6d2f676f6f676c652e7270632e4572726f72496e666f12440a0d'
  + '494e56414c49445f4649454c44120c6e657572616c2e6d6c6f70731a100a056669656c64120776657273'
  + '696f6e1a130a0a726571756573745f696412057265712d311a6b0a29747970652e676f6f676c65617069'
  + '732e636f6d2f676f6f676c652e7270632e42616452657175657374123e0a3c0a0776657273696f6e1222'
  + '76657273696f6e20272e2e2f3227206973206e6f7420612076616c6964206e616d651a0d494e56414c49'
  + '445f4649454c44', 'hex');

// FailedPrecondition("fraud:v1 is in stage DEVELOPMENT", reason="STAGE_GATE"), req-2
const STAGE_GATE = Buffer.from(
  '0809122066726175643a763120697320696e20737461676520444556454c4f504d454e541a5b0a28747970'
  + '652e676f6f676c65617069732e636f6d2f676f6f676c652e7270632e4572726f72496e666f122f0a0a5354'
  + '4147455f47415445120c6e657572616c2e6d6c6f70731a130a0a726571756573745f696412057265712d'
  + '321a660a32747970652e676f6f676c65617069732e636f6d2f676f6f676c652e7270632e507265636f6e'
  + '646974696f6e4661696c75726512300a2e0a0a53544147455f474154451a2066726175643a7631206973'
  + '20696e20737461676520444556454c4f504d454e54', 'hex');

test('an invalid field decodes to its reason, field and request id', () => {
  const status = decodeStatus(INVALID_VERSION);
  assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
  assert.equal(status.message, "version '../2' is not a valid name");
  assert.equal(status.reason, 'INVALID_FIELD');
  assert.equal(status.domain, 'neural.mlops');
  assert.deepEqual(status.metadata, { field: 'version', request_id: 'req-1' });
  assert.deepEqual(status.fieldViolations, [{
    field: 'version', description: "version '../2' is not a valid name", reason: 'INVALID_FIELD',
  }]);
});

test('a failed precondition carries its PreconditionFailure', () => {
  const status = decodeStatus(STAGE_GATE);
  assert.equal(status.reason, 'STAGE_GATE');
  assert.deepEqual(status.preconditions, [{
    type: 'STAGE_GATE', subject: '', description: 'fraud:v1 is in stage DEVELOPMENT',
  }]);
});

test('MLOpsError is rebuilt from the trailer', () => {
  const metadata = new grpc.Metadata();
  metadata.set(DETAILS_KEY, INVALID_VERSION);
  const err = new MLOpsError({
    code: grpc.status.INVALID_ARGUMENT, details: "version '../2' is not a valid name", metadata,
  });
  assert.equal(err.status, 'INVALID_ARGUMENT');
  assert.equal(err.reason, 'INVALID_FIELD');
  assert.equal(err.field, 'version');
  assert.equal(err.requestId, 'req-1');
});

test('no details or malformed details leave the status name as the reason', () => {
  const metadata = new grpc.Metadata();
  metadata.set(DETAILS_KEY, Buffer.from([0x0a, 0xff]));
  assert.equal(statusFromMetadata(metadata), null);
  const err = new MLOpsError({ code: grpc.status.UNAVAILABLE, details: 'down', metadata });
  assert.equal(err.reason, 'UNAVAILABLE');
  assert.equal(err.field, null);
});
