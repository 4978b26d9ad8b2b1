/**
 * Event channels to other domains (`/dev/xen/evtchn`): bind to a port the
 * other domain allocated, notify it, and receive its notifications on the
 * event loop (the addon polls the device with uv_poll; nothing blocks).
 *
 * @module
 */
import { native, type EvtchnDeviceNative, type NativeBinding } from '../binding.js';
import { ClosedError, fromNative } from '../errors.js';
import { checkInt, MAX_DOMID } from '../validate.js';

/** Largest event channel port this API accepts (above any ABI's; the kernel checks the exact limit). */
export const MAX_PORT = 0xfffff;

/** One bound port. */
export interface EventChannel {
  /** Our local port. */
  readonly port: number;
  readonly remoteDomain: number;
  readonly remotePort: number;
  /** Signals the other end. */
  notify(): void;
  /** Unbinds the port; idempotent. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** An open `/dev/xen/evtchn`: one per process is enough for any number of ports. */
export class EventChannels {
  #dev: EvtchnDeviceNative | undefined;
  readonly #handlers = new Map<number, () => void>();
  #onError: (err: Error) => void;

  private constructor(dev: EvtchnDeviceNative, onError: (err: Error) => void) {
    this.#dev = dev;
    this.#onError = onError;
    dev.start((err, ports) => {
      if (err) {
        this.#onError(fromNative(err, 'reading pending event channel ports'));
        return;
      }
      for (const port of ports) {
        const handler = this.#handlers.get(port);
        // unmask first: a notification that arrives while the handler runs
        // must fire again rather than be lost
        try {
          this.#dev?.unmask(port);
        } catch (e) {
          this.#onError(fromNative(e, `unmasking port ${port}`));
        }
        handler?.();
      }
    });
  }

  /**
   * Opens the device. `onError` receives failures of the event loop side
   * (by default they are thrown as uncaught exceptions).
   */
  static open(opts: { path?: string; binding?: NativeBinding; onError?: (err: Error) => void } = {}): EventChannels {
    const b = opts.binding ?? native();
    let dev: EvtchnDeviceNative;
    try {
      dev = new b.EvtchnDevice(opts.path ?? '/dev/xen/evtchn');
    } catch (e) {
      throw fromNative(e, 'opening /dev/xen/evtchn (is xen-evtchn loaded, and are you root?)');
    }
    return new EventChannels(dev, opts.onError ?? ((err) => {
      throw err;
    }));
  }

  get closed(): boolean {
    return this.#dev === undefined;
  }

  /** Binds to `remotePort` of `remoteDomain`; `onEvent` runs on every notification. */
  bind(remoteDomain: number, remotePort: number, onEvent: () => void): EventChannel {
    const dev = this.#dev;
    if (!dev) throw new ClosedError('EventChannels');
    checkInt('remoteDomain', remoteDomain, 0, MAX_DOMID);
    checkInt('remotePort', remotePort, 0, MAX_PORT);
    let port: number;
    try {
      port = dev.bindInterdomain(remoteDomain, remotePort);
    } catch (e) {
      throw fromNative(e, `binding event channel ${remotePort} of domain ${remoteDomain}`);
    }
    return this.#channel(port, remoteDomain, remotePort, onEvent);
  }

  #channel(port: number, remoteDomain: number, remotePort: number, onEvent: () => void): EventChannel {
    this.#handlers.set(port, onEvent);
    let open = true;
    const close = async () => {
      if (!open) return;
      open = false;
      this.#handlers.delete(port);
      if (this.#dev) {
        try {
          this.#dev.unbind(port);
        } catch (e) {
          // the other domain may have gone (and closed its end) first
          if ((e as { code?: string }).code !== 'ENOTCONN' && (e as { code?: string }).code !== 'EINVAL') {
            throw fromNative(e, `unbinding port ${port}`);
          }
        }
      }
    };
    return {
      port,
      remoteDomain,
      remotePort,
      notify: () => {
        if (!open || !this.#dev) throw new ClosedError(`event channel ${port}`);
        try {
          this.#dev.notify(port);
        } catch (e) {
          throw fromNative(e, `notifying port ${port}`);
        }
      },
      close,
      [Symbol.asyncDispose]: close,
    };
  }

  /**
   * Allocates a port that `remoteDomain` may bind to (the side that offers a
   * connection: a frontend); `onEvent` runs on every notification.
   */
  offer(remoteDomain: number, onEvent: () => void): EventChannel {
    const dev = this.#dev;
    if (!dev) throw new ClosedError('EventChannels');
    checkInt('remoteDomain', remoteDomain, 0, MAX_DOMID);
    let port: number;
    try {
      port = dev.bindUnbound(remoteDomain);
    } catch (e) {
      throw fromNative(e, `allocating an event channel for domain ${remoteDomain}`);
    }
    return this.#channel(port, remoteDomain, -1, onEvent);
  }

  /** Closes the device: every port bound through it is unbound with it. Idempotent. */
  async close(): Promise<void> {
    const dev = this.#dev;
    if (!dev) return;
    this.#dev = undefined;
    this.#handlers.clear();
    dev.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
