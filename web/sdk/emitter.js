// A minimal event emitter (on / off / once / emit) for browser and node.
export class Emitter {
  constructor() { this.handlers = new Map(); }

  on(name, fn) {
    if (!this.handlers.has(name)) this.handlers.set(name, new Set());
    this.handlers.get(name).add(fn);
    return this;
  }

  off(name, fn) {
    if (fn) this.handlers.get(name)?.delete(fn);
    else this.handlers.delete(name);
    return this;
  }

  once(name, fn) {
    const w = (...a) => { this.off(name, w); fn(...a); };
    return this.on(name, w);
  }

  /** Calls every handler; a throwing handler is logged, never breaks the SDK. */
  emit(name, ...args) {
    for (const fn of [...(this.handlers.get(name) || [])]) {
      try {
        fn(...args);
      } catch (e) {
        (this.log || console).error?.(`netcall: '${name}' handler threw`, e);
      }
    }
  }
}
