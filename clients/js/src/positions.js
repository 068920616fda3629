// Per-channel positions {epoch, lastEventId}: what the client has delivered
// to the app. Optionally persisted in a store with localStorage's interface
// (getItem/setItem), so that a reloaded page resumes where it was.
export class Positions {
  #map = new Map();
  #store;
  #key;

  constructor(store, key) {
    this.#store = store ?? null;
    this.#key = key;
    const saved = this.#load();
    for (const [channel, p] of Object.entries(saved)) {
      if (p && typeof p.lastEventId === 'number') this.#map.set(channel, { epoch: p.epoch, lastEventId: p.lastEventId });
    }
  }

  get(channel) {
    return this.#map.get(channel);
  }

  set(channel, epoch, lastEventId) {
    this.#map.set(channel, { epoch, lastEventId });
    this.#save();
  }

  // Records a stored event; false when it was delivered already.
  advance(channel, eventId) {
    const p = this.#map.get(channel);
    if (p && eventId <= p.lastEventId) return false;
    this.#map.set(channel, { epoch: p?.epoch, lastEventId: eventId });
    this.#save();
    return true;
  }

  entries() {
    return [...this.#map.entries()];
  }

  toJSON() {
    return Object.fromEntries(this.#map);
  }

  #load() {
    if (!this.#store) return {};
    try {
      return JSON.parse(this.#store.getItem(this.#key) ?? '{}') ?? {};
    } catch {
      return {};
    }
  }

  #save() {
    if (this.#store) this.#store.setItem(this.#key, JSON.stringify(this.toJSON()));
  }
}

// A store in memory, with localStorage's interface (for tests, or to share
// positions between clients of one process).
export function memoryStore() {
  const items = new Map();
  return {
    getItem: (key) => (items.has(key) ? items.get(key) : null),
    setItem: (key, value) => void items.set(key, String(value)),
    removeItem: (key) => void items.delete(key),
  };
}
