/**
 * A clock for model-based tests where every deadline is its own event. xstate's SimulatedClock
 * advances every timer at once, so a model step "the status interval passed" would also age an
 * assignment deadline armed earlier; here `fire(ms)` runs exactly the armed timers of that
 * duration, as if the others had been armed later. Durations are unique per named delay in the
 * tests, so a duration names a deadline.
 */
interface Timer {
  fn: () => void;
  ms: number;
}

export class ModelClock {
  #timers = new Map<number, Timer>();
  #next = 1;
  #now = 0;

  now(): number {
    return this.#now;
  }

  setTimeout(fn: () => void, ms: number): number {
    const id = this.#next++;
    this.#timers.set(id, { fn, ms });
    return id;
  }

  clearTimeout(id: number): void {
    this.#timers.delete(id);
  }

  /** How many timers of this duration are armed. */
  armed(ms: number): number {
    return [...this.#timers.values()].filter((t) => t.ms === ms).length;
  }

  /** Runs the timers of this duration armed now (not those they arm); returns how many ran. */
  fire(ms: number): number {
    const due = [...this.#timers.entries()].filter(([, t]) => t.ms === ms);
    this.#now += ms;
    for (const [id, t] of due) {
      if (!this.#timers.has(id)) continue; // cleared by an earlier one
      this.#timers.delete(id);
      t.fn();
    }
    return due.length;
  }
}
