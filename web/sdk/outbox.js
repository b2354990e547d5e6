// The bill outbox: every bill is stored (localStorage in a browser) before
// it is published and removed only after the broker's PUBACK, so a bill
// survives a broker outage, a closed tab or a reload — the browser's
// counterpart of the daemon's fsynced outbox. Delivery is at least once;
// consumers de-duplicate on the bill's id.

/** A Storage-like map kept in memory, for node and private windows. */
export class MemoryStorage {
  constructor() { this.m = new Map(); }
  getItem(k) { return this.m.has(k) ? this.m.get(k) : null; }
  setItem(k, v) { this.m.set(k, String(v)); }
  removeItem(k) { this.m.delete(k); }
}

export function defaultStorage() {
  try {
    const s = globalThis.localStorage;
    if (s) {
      const probe = '__netcall_probe__';
      s.setItem(probe, '1');
      s.removeItem(probe);
      return s;
    }
  } catch { /* storage disabled */ }
  return new MemoryStorage();
}

export class BillOutbox {
  /**
   * @param {object} o
   * @param {Storage} o.storage
   * @param {string} o.key  the storage key of this device's outbox
   * @param {(json:string)=>Promise<void>} o.publish  resolves on PUBACK
   */
  constructor({ storage, key, publish, log = console }) {
    this.storage = storage;
    this.key = key;
    this.publish = publish;
    this.log = log;
    this.inflight = new Set();
  }

  load() {
    try {
      const v = JSON.parse(this.storage.getItem(this.key) || '{}');
      return v && typeof v === 'object' && !Array.isArray(v) ? v : {};
    } catch {
      return {};
    }
  }

  save(m) {
    if (Object.keys(m).length === 0) this.storage.removeItem(this.key);
    else this.storage.setItem(this.key, JSON.stringify(m));
  }

  /** Stores a bill and tries to publish it. */
  add(bill) {
    const m = this.load();
    m[bill.id] = JSON.stringify(bill);
    this.save(m);
    this.kick();
  }

  /** The ids of bills not yet acknowledged by the broker. */
  pending() { return Object.keys(this.load()); }

  /** Publishes every stored bill not already in flight (call after each connect). */
  kick() {
    for (const [id, json] of Object.entries(this.load())) {
      if (this.inflight.has(id)) continue;
      this.inflight.add(id);
      this.publish(json).then(() => {
        const m = this.load();
        delete m[id];
        this.save(m);
      }, (e) => {
        this.log.warn?.(`netcall: bill ${id} not published yet`, e?.message || e);
      }).finally(() => this.inflight.delete(id));
    }
  }
}
