/**
 * The library's xenstore client (lib/xen/xenstore.ts) against a fake
 * xenstored speaking the xsd_sockmsg protocol on a Unix socket: runs anywhere.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { ClosedError, TimeoutError } from '../../lib/errors.js';
import { Xenstore, XenstoreError } from '../../lib/xen/xenstore.js';

const READ = 2, GET_PERMS = 3, WATCH = 4, UNWATCH = 5, TX_START = 6, TX_END = 7, WRITE = 11, MKDIR = 12, RM = 13,
  SET_PERMS = 14, EVENT = 15, ERROR = 16, DIRECTORY = 1;

/** A minimal in-memory xenstored: enough semantics to exercise the client. */
class FakeXenstored {
  readonly tree = new Map<string, string>();
  readonly perms = new Map<string, string[]>();
  readonly watches = new Map<string, { sock: Socket; path: string }>();
  /** Open transactions: their writes, applied at a committing end. */
  readonly txs = new Map<number, Map<string, string>>();
  nextTx = 1;
  /** Transaction ends that answer EAGAIN before one commits. */
  conflicts = 0;
  readonly server: Server;

  constructor(readonly path: string) {
    this.server = createServer((sock) => {
      let buf = Buffer.alloc(0);
      sock.on('error', () => undefined); // the client may hang up first
      sock.on('data', (d) => {
        buf = Buffer.concat([buf, d]);
        while (buf.length >= 16 && buf.length >= 16 + buf.readUInt32LE(12)) {
          const len = buf.readUInt32LE(12);
          this.handle(sock, buf.readUInt32LE(0), buf.readUInt32LE(4), buf.subarray(16, 16 + len), buf.readUInt32LE(8));
          buf = buf.subarray(16 + len);
        }
      });
    });
  }

  private send(sock: Socket, type: number, id: number, payload: string): void {
    const h = Buffer.alloc(16);
    h.writeUInt32LE(type, 0);
    h.writeUInt32LE(id, 4);
    h.writeUInt32LE(Buffer.byteLength(payload), 12);
    sock.write(Buffer.concat([h, Buffer.from(payload)]));
  }

  private fire(path: string): void {
    for (const [token, w] of this.watches) {
      if (path === w.path || path.startsWith(`${w.path}/`)) this.send(w.sock, EVENT, 0, `${path}\0${token}\0`);
    }
  }

  private handle(sock: Socket, type: number, id: number, body: Buffer, tx: number): void {
    const parts = body.toString().split('\0');
    const path = parts[0]!;
    if (path === '/hang') return; // never answers
    switch (type) {
      case READ: {
        const value = this.txs.get(tx)?.get(path) ?? this.tree.get(path);
        if (value !== undefined) this.send(sock, READ, id, value);
        else this.send(sock, ERROR, id, 'ENOENT\0');
        return;
      }
      case WRITE: {
        const value = body.subarray(Buffer.byteLength(path) + 1).toString();
        if (tx) {
          this.txs.get(tx)!.set(path, value);
          this.send(sock, WRITE, id, 'OK\0');
          return;
        }
        this.tree.set(path, value);
        this.send(sock, WRITE, id, 'OK\0');
        this.fire(path);
        return;
      }
      case MKDIR:
        if (!this.tree.has(path)) this.tree.set(path, '');
        this.send(sock, MKDIR, id, 'OK\0');
        return;
      case TX_START: {
        const t = this.nextTx++;
        this.txs.set(t, new Map());
        this.send(sock, TX_START, id, `${t}\0`);
        return;
      }
      case TX_END: {
        const writes = this.txs.get(tx);
        this.txs.delete(tx);
        if (!writes) return this.send(sock, ERROR, id, 'ENOENT\0');
        if (path === 'T' && this.conflicts > 0) {
          this.conflicts--;
          return this.send(sock, ERROR, id, 'EAGAIN\0');
        }
        if (path === 'T') {
          for (const [k, v] of writes) {
            this.tree.set(k, v);
            this.fire(k);
          }
        }
        this.send(sock, TX_END, id, 'OK\0');
        return;
      }
      case GET_PERMS:
        if (!this.tree.has(path)) return this.send(sock, ERROR, id, 'ENOENT\0');
        this.send(sock, GET_PERMS, id, (this.perms.get(path) ?? ['n0']).map((p) => `${p}\0`).join(''));
        return;
      case SET_PERMS:
        if (!this.tree.has(path)) return this.send(sock, ERROR, id, 'ENOENT\0');
        this.perms.set(path, parts.slice(1).filter(Boolean));
        this.send(sock, SET_PERMS, id, 'OK\0');
        return;
      case RM:
        for (const k of [...this.tree.keys()]) if (k === path || k.startsWith(`${path}/`)) this.tree.delete(k);
        this.send(sock, RM, id, 'OK\0');
        this.fire(path);
        return;
      case DIRECTORY: {
        const kids = new Set<string>();
        for (const k of this.tree.keys()) {
          if (k.startsWith(`${path}/`)) kids.add(k.slice(path.length + 1).split('/')[0]!);
        }
        this.send(sock, DIRECTORY, id, [...kids].map((k) => `${k}\0`).join(''));
        return;
      }
      case WATCH:
        this.watches.set(parts[1]!, { sock, path });
        this.send(sock, WATCH, id, 'OK\0');
        this.send(sock, EVENT, 0, `${path}\0${parts[1]}\0`);
        return;
      case UNWATCH:
        this.watches.delete(parts[1]!);
        this.send(sock, UNWATCH, id, 'OK\0');
        return;
      default:
        this.send(sock, ERROR, id, 'EINVAL\0');
    }
  }
}

describe('Xenstore client (lib/xen)', () => {
  let dir: string;
  let fake: FakeXenstored;
  let xs: Xenstore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'xzc-xs-'));
    fake = new FakeXenstored(join(dir, 'socket'));
    await new Promise<void>((r) => fake.server.listen(fake.path, r));
    xs = await Xenstore.connect({ path: fake.path, timeoutMs: 200 });
  });

  afterEach(async () => {
    await xs.close();
    await new Promise((r) => fake.server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes, reads, lists and removes', async () => {
    await xs.write('/local/domain/3/data/a', 'hello');
    await xs.write('/local/domain/3/data/b', '');
    expect(await xs.read('/local/domain/3/data/a')).toBe('hello');
    expect(await xs.read('/local/domain/3/data/b')).toBe('');
    expect((await xs.directory('/local/domain/3/data')).sort()).toEqual(['a', 'b']);
    await xs.rm('/local/domain/3/data');
    expect(await xs.tryRead('/local/domain/3/data/a')).toBeUndefined();
    await xs.rm('/local/domain/3/data'); // removing what is gone is not an error
  });

  it('reports xenstore errors with their code and path', async () => {
    const err = await xs.read('/nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(XenstoreError);
    expect(err).toMatchObject({ code: 'ENOENT', path: '/nope' });
  });

  it('pipelines many requests and matches replies by id', async () => {
    await Promise.all(Array.from({ length: 200 }, (_, i) => xs.write(`/t/${i}`, String(i * 7))));
    const values = await Promise.all(Array.from({ length: 200 }, (_, i) => xs.read(`/t/${i}`)));
    expect(values).toEqual(Array.from({ length: 200 }, (_, i) => String(i * 7)));
  });

  it('waits for a value through a watch, and drops the watch afterwards', async () => {
    const waiting = xs.waitFor('/r', (v) => v?.startsWith('7 ') === true, 5000);
    await xs.write('/r', '6 ok old');
    await xs.write('/r', '7 ok new');
    expect(await waiting).toBe('7 ok new');
    await new Promise((r) => setTimeout(r, 20));
    expect(fake.watches.size).toBe(0);
  });

  it('accepts a value that is already there', async () => {
    await xs.write('/ready', '1');
    expect(await xs.waitFor('/ready', (v) => v === '1', 1000)).toBe('1');
  });

  it('times out with the last value it saw', async () => {
    await xs.write('/slow', 'nope');
    await expect(xs.waitFor('/slow', (v) => v === 'yes', 50)).rejects.toThrow(/timed out after 50 ms .*"nope"/);
  });

  it('watches report the path that fired, below the watched node', async () => {
    const fired: string[] = [];
    const w = await xs.watch('/local/domain/0/backend/vdispl', (p) => fired.push(p));
    await xs.write('/local/domain/0/backend/vdispl/5/0/state', '1');
    await new Promise((r) => setTimeout(r, 20));
    await w.close();
    await xs.write('/local/domain/0/backend/vdispl/5/0/state', '2');
    await new Promise((r) => setTimeout(r, 20));
    expect(fired).toEqual(['/local/domain/0/backend/vdispl', '/local/domain/0/backend/vdispl/5/0/state']);
    expect(fake.watches.size).toBe(0);
  });

  it('commits a transaction, retries it on EAGAIN and aborts it when its function throws', async () => {
    fake.conflicts = 2;
    let runs = 0;
    const out = await xs.transaction(async (tx) => {
      runs++;
      await tx.write('/fe/0/req-ring-ref', '8');
      await tx.write('/fe/0/state', '3');
      return (await tx.read('/fe/0/state'));
    });
    expect({ out, runs }).toEqual({ out: '3', runs: 3 });
    expect(await xs.read('/fe/0/req-ring-ref')).toBe('8');
    await expect(xs.transaction(async (tx) => {
      await tx.write('/fe/0/state', '5');
      throw new Error('changed my mind');
    })).rejects.toThrow('changed my mind');
    expect(await xs.read('/fe/0/state')).toBe('3');
    expect(fake.txs.size).toBe(0);
  });

  it('sets and reads permissions', async () => {
    await xs.write('/be/5/0/state', '1');
    await xs.setPerms('/be/5/0/state', [{ domid: 0, access: 'n' }, { domid: 5, access: 'r' }]);
    expect(await xs.getPerms('/be/5/0/state')).toEqual([{ domid: 0, access: 'n' }, { domid: 5, access: 'r' }]);
    await expect(xs.setPerms('/be/5/0/state', [])).rejects.toThrow(/owner/);
  });

  it('bounds every reply and refuses use after close', async () => {
    await expect(xs.read('/hang')).rejects.toBeInstanceOf(TimeoutError);
    expect(await xs.read('/ready').catch((e: unknown) => e)).toMatchObject({ code: 'ENOENT' });
    const waiting = xs.waitFor('/never', (v) => v === 'x', 60_000).then(() => 'resolved', (e: unknown) => e);
    await new Promise((r) => setTimeout(r, 20));
    await xs.close();
    expect(await waiting).toBeInstanceOf(ClosedError); // at once, not after a minute
    await expect(xs.read('/ready')).rejects.toBeInstanceOf(ClosedError);
  });
});
