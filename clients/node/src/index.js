'use strict';
// A Node.js client of the neural-mlops control plane, built at run time from the .proto
// files in protos/ (nothing generated, nothing copied): the contract is the only input.
const os = require('node:os');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const assignment = require('./assignment');
const audit = require('./audit');
const latency = require('./latency');
const routes = require('./routes');
const targeting = require('./targeting');
const attributes = require('./attributes');
const { StickyArms } = require('./sticky');
const { RouteFollower } = require('./follow');
const { DOMAIN, statusFromMetadata } = require('./status');

const PROTO_ROOT = process.env.NEURAL_MLOPS_PROTOS
  || path.resolve(__dirname, '..', '..', '..', 'protos');
const PROTO_FILES = ['registry', 'experiments', 'deployments', 'audit', 'routing']
  .map((name) => `neural/mlops/v1/${name}.proto`);

let cachedPackage = null;

/** The neural.mlops.v1 package (service constructors and message types), loaded once. */
function loadPackage(protoRoot = PROTO_ROOT) {
  if (cachedPackage && protoRoot === PROTO_ROOT) return cachedPackage;
  const definition = protoLoader.loadSync(PROTO_FILES, {
    includeDirs: [protoRoot],
    keepCase: true, // field names exactly as in the .proto (snake_case)
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition).neural.mlops.v1;
  if (protoRoot === PROTO_ROOT) cachedPackage = pkg;
  return pkg;
}

/**
 * A control-plane error: the gRPC status name, the message, and from the google.rpc.Status
 * details (docs/errors.md) the stable `reason`, the offending `field`, the `requestId`,
 * and the BadRequest / PreconditionFailure entries. Without details (a proxy, a
 * deadline) `reason` is the status name and `field` null.
 */
class MLOpsError extends Error {
  constructor(err) {
    super(err.details || err.message);
    this.name = 'MLOpsError';
    this.code = err.code;
    this.status = Object.keys(grpc.status).find((k) => grpc.status[k] === err.code) || 'UNKNOWN';
    const details = statusFromMetadata(err.metadata);
    const ours = details && details.domain === DOMAIN ? details : null;
    const violation = ours && ours.fieldViolations[0];
    this.reason = (ours && ours.reason) || this.status;
    this.field = (violation && violation.field) || (ours && ours.metadata.field) || null;
    this.requestId = (ours && ours.metadata.request_id) || null;
    this.fieldViolations = ours ? ours.fieldViolations : [];
    this.preconditions = ours ? ours.preconditions : [];
  }
}

class NeuralMLOpsClient {
  /**
   * @param {string} target "grpc://host:port" or "host:port"
   * @param {{user?: string, token?: string, deadlineMs?: number, protoRoot?: string}} options
   */
  constructor(target, options = {}) {
    const address = target.replace(/^grpc:\/\//, '');
    const pkg = loadPackage(options.protoRoot);
    const credentials = grpc.credentials.createInsecure();
    this.user = options.user || '';
    this.token = options.token || process.env.NEURAL_MLOPS_TOKEN || '';
    this.deadlineMs = options.deadlineMs || 30000;
    this.registry = new pkg.RegistryService(address, credentials);
    const channel = { channelOverride: this.registry.getChannel() };
    this.experiments = new pkg.ExperimentService(address, credentials, channel);
    this.deployments = new pkg.DeploymentService(address, credentials, channel);
    this.audit = new pkg.AuditService(address, credentials, channel);
    this.routing = new pkg.RoutingService(address, credentials, channel);
    this.splitStrategies = Object.fromEntries(
      pkg.TrafficSplitStrategy.type.value.map((v) => [v.name, v.number]),
    );
  }

  metadata(actor) {
    const md = new grpc.Metadata();
    if (actor || this.user) md.set('x-neural-user', actor || this.user);
    if (this.token) md.set('authorization', `Bearer ${this.token}`);
    return md;
  }

  options() {
    return { deadline: new Date(Date.now() + this.deadlineMs) };
  }

  /** Promise wrapper for a unary call: stub.method(request) with identity and deadline. */
  unary(stub, method, request, actor) {
    return new Promise((resolve, reject) => {
      stub[method](request, this.metadata(actor), this.options(), (err, response) => {
        if (err) reject(new MLOpsError(err));
        else resolve(response);
      });
    });
  }

  // -- registry ----------------------------------------------------------------------

  /**
   * Register a model version; `artifact` (a Buffer) is streamed in 1 MiB chunks after
   * the metadata message, or pass `artifact_uri` in metadata to record a reference.
   */
  registerModel(metadata, artifact = null) {
    return new Promise((resolve, reject) => {
      const call = this.registry.RegisterModel(
        this.metadata(metadata.created_by), this.options(), (err, response) => {
          if (err) reject(new MLOpsError(err));
          else resolve(response);
        },
      );
      call.write({ metadata });
      if (artifact) {
        for (let off = 0; off < artifact.length; off += 1 << 20) {
          call.write({ chunk: artifact.subarray(off, off + (1 << 20)) });
        }
      }
      call.end();
    });
  }

  getModelVersion(name, version) {
    return this.unary(this.registry, 'GetModelVersion', { name, version });
  }

  // -- experiments -------------------------------------------------------------------

  /** `strategy` (optional): a TrafficSplitStrategy name or number, or the Python API's
   *  name ("multi_armed_bandit"); anything else rejects with UnknownStrategyError before
   *  sending (the wire would silently make it a HASH test). */
  createTest(request) {
    let strategy;
    try {
      strategy = routes.splitStrategy(request.strategy, this.splitStrategies);
    } catch (err) {
      return Promise.reject(err);
    }
    const wire = { ...request };
    if (strategy === undefined) delete wire.strategy;
    else wire.strategy = strategy;
    return this.unary(this.experiments, 'CreateTest', wire, request.created_by);
  }

  startTest(testId, actor) {
    return this.unary(this.experiments, 'StartTest', { test_id: testId }, actor);
  }

  getTest(testId) {
    return this.unary(this.experiments, 'GetTest', { test_id: testId });
  }

  /** A RUNNING MULTI_ARMED_BANDIT test reweighted now, whatever its interval (unchanged
   *  while its burn-in lasts); answers the test with its new weights. */
  reweightBandit(testId, actor) {
    return this.unary(this.experiments, 'ReweightBandit', { test_id: testId }, actor);
  }

  /** The control plane's answer for one unit: the hash by the test's current weights; for
   *  a bandit, the arm the unit was already counted in, if any (ASSIGNMENT.md). */
  getVariant(testId, unitId) {
    return this.unary(this.experiments, 'GetVariant', { test_id: testId, unit_id: unitId });
  }

  /** records: [{variant?, unit_id?, success?, latency?, error?, custom_metrics?}] */
  recordRequests(testId, records) {
    const wire = records.map((r) => {
      const record = {
        variant: r.variant || '',
        unit_id: r.unit_id || '',
        error: Boolean(r.error),
        custom_metrics: r.custom_metrics || {},
      };
      // proto3 `optional`: a field left out is "not known", not false / 0.
      if (r.success !== undefined) record.success = Boolean(r.success);
      if (r.latency !== undefined) record.latency = r.latency;
      return record;
    });
    return this.unary(this.experiments, 'RecordRequests', { test_id: testId, records: wire });
  }

  /** The analysis report as a plain object (the server's JSON), plus the typed headline. */
  async analyzeTest(testId, confidenceLevel = 0) {
    const res = await this.unary(this.experiments, 'AnalyzeTest',
      { test_id: testId, confidence_level: confidenceLevel });
    return { ...JSON.parse(res.analysis_json), headline: res };
  }

  // -- routing ---------------------------------------------------------------------

  /** The current routing table, once (RoutingTable: version, routes). */
  getRoutingTable() {
    return this.unary(this.routing, 'GetRoutingTable', {});
  }

  /**
   * Follow the routing table as a sidecar does: WatchRoutes sends the current table at
   * once and every new version (a bandit's reweighting, a test started or stopped); each
   * is applied to `router` (a LocalRouter, created when not given). Returns a
   * RouteFollower: `await f.ready()`, `await f.waitForVersion(v)`, `f.router.assign(...)`,
   * `f.close()`. A failed stream is reopened with backoff (`f.reconnects`, `f.lastError`,
   * `onError` per failure) unless `reconnect: false` or the error is final
   * (UNAUTHENTICATED, PERMISSION_DENIED, UNIMPLEMENTED, INVALID_ARGUMENT): then `f.error`
   * is set and waits reject. The router, and its sticky arms, outlive the stream.
   * @param {{router?: routes.LocalRouter, stickyUnits?: number, watcherId?: string,
   *   reconnect?: boolean, onTable?: Function, onError?: Function}} options
   */
  followRoutes(options = {}) {
    const router = options.router || new routes.LocalRouter({ stickyUnits: options.stickyUnits });
    return new RouteFollower(this.routing, router, {
      metadata: () => this.metadata(),
      watcherId: options.watcherId || `node-client@${os.hostname()}:${process.pid}`,
      reconnect: options.reconnect,
      onTable: options.onTable,
      onError: options.onError,
      wrapError: (err) => new MLOpsError(err),
    });
  }

  // -- audit -------------------------------------------------------------------------

  /** Every event matching `request` (QueryEventsRequest fields), newest first: each page
   *  streams in chunks, the last chunk carries the next page's token. */
  async queryEvents(request = {}, pageSize = 1000) {
    const events = [];
    let token = '';
    do {
      // eslint-disable-next-line no-await-in-loop
      token = await new Promise((resolve, reject) => {
        let next = '';
        const call = this.audit.QueryEvents(
          { ...request, page_size: pageSize, page_token: token }, this.metadata(),
          this.options(),
        );
        call.on('data', (chunk) => {
          events.push(...chunk.events);
          if (chunk.next_page_token) next = chunk.next_page_token;
        });
        call.on('error', (err) => reject(new MLOpsError(err)));
        call.on('end', () => resolve(next));
      });
    } while (token);
    return events;
  }

  close() {
    this.registry.close();
  }
}

module.exports = {
  NeuralMLOpsClient, MLOpsError, loadPackage, assignment, audit, latency, routes, StickyArms,
  LocalRouter: routes.LocalRouter, UnknownStrategyError: routes.UnknownStrategyError,
  RouteRejectedError: routes.RouteRejectedError, targeting, attributes,
  RequestAttributes: attributes.RequestAttributes, ConditionError: targeting.ConditionError,
};
