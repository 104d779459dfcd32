'use strict';
// Following the control plane's routing table (RoutingService.WatchRoutes, as a sidecar
// does): every table version the stream sends is applied to a LocalRouter, so local
// assignment uses a bandit's current weights while the router keeps each unit's arm.

class RouteFollower {
  /**
   * @param {object} stub a RoutingService client
   * @param {import('./routes').LocalRouter} router where each table is applied
   * @param {{metadata: object, watcherId?: string, onTable?: Function, onError?: Function}} options
   */
  constructor(stub, router, options) {
    this.router = router;
    this.error = null; // the error that ended the stream (null while it is open)
    this.closed = false;
    this.waiters = [];
    this.tables = 0; // tables received on this stream
    this.onTable = options.onTable || null;
    this.onError = options.onError || null;
    this.wrapError = options.wrapError || ((e) => e);
    this.call = stub.WatchRoutes({ sidecar_id: options.watcherId || '', known_version: 0 },
      options.metadata);
    this.call.on('data', (table) => this.applied(table));
    this.call.on('error', (err) => this.ended(err));
    this.call.on('end', () => this.ended(null));
  }

  applied(table) {
    const version = this.router.apply(table);
    this.tables += 1;
    if (this.onTable) this.onTable(version, this.router);
    this.waiters = this.waiters.filter((w) => {
      if (version < w.version) return true;
      clearTimeout(w.timer);
      w.resolve(version);
      return false;
    });
  }

  ended(err) {
    if (this.error || this.closed) return;
    const cancelled = err && err.code === 1; // CANCELLED: our own close()
    if (cancelled) return;
    this.error = err ? this.wrapError(err) : new Error('the control plane ended WatchRoutes');
    if (this.onError) this.onError(this.error);
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(this.error);
    }
    this.waiters = [];
  }

  /** Resolves with the router's version once this stream has applied table `version` or
   *  a newer one; rejects when the stream ends or after `timeoutMs`. */
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
        reject(new Error(`no routing table version >= ${version} within ${timeoutMs} ms `
          + `(holding version ${this.router.version})`));
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
    this.call.cancel();
    for (const w of this.waiters) {
      clearTimeout(w.timer);
      w.reject(new Error('the route follower is closed'));
    }
    this.waiters = [];
  }
}

module.exports = { RouteFollower };
