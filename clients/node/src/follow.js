'use strict';
// Following the control plane's routing table (RoutingService.WatchRoutes, as a sidecar
// does): every table version the stream sends is applied to a LocalRouter, so local
// assignment uses a bandit's current weights while the router keeps each unit's arm.
// A stream that fails is reopened with capped exponential backoff and full jitter (as
// the sidecar's RouteWatcher); the control plane sends the current table at once.

// Errors a retry cannot fix: the follower stops and reports them.
const FINAL_CODES = new Set([3, 7, 12, 16]); // INVALID_ARGUMENT, PERMISSION_DENIED,
// UNIMPLEMENTED, UNAUTHENTICATED
const CANCELLED = 1;

class Backoff {
  constructor(initialMs = 100, maximumMs = 2000) {
    this.initialMs = initialMs;
    this.maximumMs = maximumMs;
    this.attempt = 0;
  }

  next() {
    const cap = Math.min(this.maximumMs, this.initialMs * 2 ** this.attempt);
    this.attempt += 1;
    return cap / 2 + Math.random() * (cap / 2);
  }
}

class RouteFollower {
  /**
   * @param {object} stub a RoutingService client
   * @param {import('./routes').LocalRouter} router where each table is applied
   * @param {{metadata: Function, watcherId?: string, reconnect?: boolean,
   *   onTable?: Function, onError?: Function, wrapError?: Function}} options
   */
  constructor(stub, router, options) {
    this.stub = stub;
    this.router = router;
    this.options = options;
    this.reconnect = options.reconnect !== false;
    this.error = null; // the error that stopped the follower for good (null: following)
    this.lastError = null; // the last stream error, also one that was retried
    this.reconnects = 0; // streams reopened after an error
    this.connected = false; // a table arrived on the current stream
    this.closed = false;
    this.waiters = [];
    this.tables = 0; // tables received
    this.backoff = new Backoff();
    this.timer = null;
    this.open();
  }

  open() {
    this.timer = null;
    const call = this.stub.WatchRoutes(
      { sidecar_id: this.options.watcherId || '', known_version: this.router.version },
      this.options.metadata(),
    );
    this.call = call;
    call.on('data', (table) => this.applied(table));
    call.on('error', (err) => this.failed(call, err));
    call.on('end', () => this.failed(call, null));
  }

  applied(table) {
    const version = this.router.apply(table);
    this.tables += 1;
    this.connected = true;
    this.backoff.attempt = 0;
    if (this.options.onTable) this.options.onTable(version, this.router);
    this.waiters = this.waiters.filter((w) => {
      if (version < w.version) return true;
      clearTimeout(w.timer);
      w.resolve(version);
      return false;
    });
  }

  failed(call, err) {
    if (call !== this.call || this.closed || this.error) return;
    if (err && err.code === CANCELLED) return;
    this.connected = false;
    const wrap = this.options.wrapError || ((e) => e);
    const error = err ? wrap(err) : new Error('the control plane ended WatchRoutes');
    this.lastError = error;
    this.call = null;
    if (this.options.onError) this.options.onError(error);
    if (this.reconnect && !(err && FINAL_CODES.has(err.code))) {
      this.reconnects += 1;
      this.timer = setTimeout(() => this.open(), this.backoff.next());
      return;
    }
    this.error = error;
    this.rejectAll(error);
  }

  rejectAll(error) {
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(error);
    }
    this.waiters = [];
  }

  /** Resolves with the router's version once this follower has applied table `version`
   *  or a newer one; rejects when the follower stops or after `timeoutMs`. */
  waitForVersion(version, timeoutMs = 30000) {
    if (this.tables > 0 && this.router.version >= version) {
      return Promise.resolve(this.router.version);
    }
    if (this.error) return Promise.reject(this.error);
    if (this.closed) return Promise.reject(new Error('the route follower is closed'));
    return new Promise((resolve, reject) => {
      const w = { version, resolve, reject };
      w.timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        const why = this.lastError ? `; last error: ${this.lastError.message}` : '';
        reject(new Error(`no routing table version >= ${version} within ${timeoutMs} ms `
          + `(holding version ${this.router.version}${why})`));
      }, timeoutMs);
      this.waiters.push(w);
    });
  }

  /** The first table (the stream sends the current one at once). */
  ready(timeoutMs = 30000) {
    return this.waitForVersion(0, timeoutMs);
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    if (this.call) this.call.cancel();
    this.rejectAll(new Error('the route follower is closed'));
  }
}

module.exports = { RouteFollower, Backoff };
