/**
 * Errors of the xen-zcopy API: one small hierarchy with stable `code`s.
 * System errors keep the kernel's `errno`, `code` and `syscall`, like Node's
 * own fs errors.
 *
 * @module
 */
import { isNativeError } from './binding.js';

/** Base class of every error this package throws on purpose. */
export class XenZcopyError extends Error {
  /** Stable machine-readable code, e.g. 'ERR_XZC_INVALID_ARG' or 'ETIMEDOUT'. */
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** An argument was rejected before any system call was made. */
export class ValidationError extends XenZcopyError {
  constructor(message: string) {
    super('ERR_XZC_INVALID_ARG', message);
  }
}

/** The resource was used after close(). */
export class ClosedError extends XenZcopyError {
  constructor(what: string) {
    super('ERR_XZC_CLOSED', `${what} is closed`);
  }
}

/** The xen_drm_zcopy module (or another device) is not available. */
export class DeviceNotFoundError extends XenZcopyError {
  constructor(message: string) {
    super('ERR_XZC_NO_DEVICE', message);
  }
}

/** A system call failed; `errno`, `code` and `syscall` are the kernel's. */
export class XenZcopySystemError extends XenZcopyError {
  readonly errno: number;
  readonly syscall: string;
  readonly path: string | undefined;

  constructor(errno: number, code: string, syscall: string, message: string, options?: ErrorOptions) {
    super(code, message, options);
    this.errno = errno;
    this.syscall = syscall;
    this.path = undefined;
  }
}

/** WAIT_FREE ran out of time: something still holds the buffer. */
export class TimeoutError extends XenZcopySystemError {
  constructor(syscall: string, message: string, options?: ErrorOptions) {
    super(-110, 'ETIMEDOUT', syscall, message, options);
  }
}

/**
 * Wraps an error thrown by the addon into the typed hierarchy, keeping the
 * original as `cause`; `context` says what was being done.
 */
export function fromNative(e: unknown, context: string): Error {
  if (!isNativeError(e)) return e instanceof Error ? e : new Error(String(e));
  const message = `${context}: ${e.message}`;
  if (e.code === 'ETIMEDOUT') return new TimeoutError(e.syscall, message, { cause: e });
  const err = new XenZcopySystemError(e.errno, e.code, e.syscall, message, { cause: e });
  if (e.path !== undefined) (err as { path: string | undefined }).path = e.path;
  return err;
}
