'use strict';
// Sticky arms for multi-armed bandit routes (ASSIGNMENT.md, "Multi-armed bandits"): a
// unit keeps the arm it was first given on a route while the weights move. The same
// semantics as the sidecar's StickyArms (sidecar/sticky.py): a bounded LRU of
// (route id, unit id) -> arm name, one per process, the least recently seen unit
// forgotten when full (counted in `evictions`), a size of 0 remembering nothing.

const DEFAULT_STICKY_UNITS = 100000;

class StickyArms {
  /** @param {number} size entries kept (the sidecar's --sticky-units, default 100,000) */
  constructor(size = DEFAULT_STICKY_UNITS) {
    if (!Number.isInteger(size) || size < 0) {
      throw new RangeError(`the sticky table size must be an integer >= 0, got ${size}`);
    }
    this.size = size;
    this.evictions = 0; // units forgotten to make room
    this.hits = 0; // lookups that found a remembered arm
    // A Map iterates in insertion order: deleting and setting again moves a key to the
    // end (most recent); the first key is the least recently seen.
    this.entries = new Map();
  }

  get length() {
    return this.entries.size;
  }

  static key(routeId, unitId) {
    // JSON of the pair: no separator inside either string can make two pairs collide.
    return JSON.stringify([routeId, unitId]);
  }

  /** The arm this unit was given on this route (null: not remembered); a hit makes the
   *  unit the most recently seen. */
  get(routeId, unitId) {
    const key = StickyArms.key(routeId, unitId);
    const arm = this.entries.get(key);
    if (arm === undefined) return null;
    this.entries.delete(key);
    this.entries.set(key, arm);
    this.hits += 1;
    return arm;
  }

  /** Remember the unit's arm, forgetting the least recently seen units when full. */
  put(routeId, unitId, arm) {
    if (this.size === 0) return;
    const key = StickyArms.key(routeId, unitId);
    this.entries.delete(key);
    this.entries.set(key, arm);
    while (this.entries.size > this.size) {
      this.entries.delete(this.entries.keys().next().value);
      this.evictions += 1;
    }
  }
}

module.exports = { StickyArms, DEFAULT_STICKY_UNITS };
