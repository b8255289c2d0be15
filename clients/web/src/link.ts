// One WebSocket to the server, replaced after every failure with exponential backoff and
// jitter. Requests get ids and promises; pushes go to the owner. A link that hears nothing
// for `heartbeat` sends a ping, and one silent for three times that is replaced.

import type { ErrorBody, Push, Reply, Request } from "./protocol.js";
import { KoraError } from "./errors.js";

export interface LinkOptions {
  url: string;
  token?: string | null;
  backoffMin: number;
  backoffMax: number;
  heartbeat: number;
  requestTimeout: number;
  WebSocket: typeof WebSocket;
}

export interface LinkEvents {
  open(): void;
  close(): void;
  push(p: Push): void;
}

type Pending = { resolve(v: any): void; reject(e: unknown): void; timer?: ReturnType<typeof setTimeout> };
type Body = Request extends infer R ? (R extends unknown ? Omit<R, "id"> : never) : never;

export class Link {
  private ws: WebSocket | null = null;
  private open = false;
  private nextId = 1;
  private waiting = new Map<number, Pending>();
  private failures = 0;
  private retry?: ReturnType<typeof setTimeout>;
  private beat?: ReturnType<typeof setInterval>;
  private heard = 0;
  private closed = false;

  constructor(private opts: LinkOptions, private events: LinkEvents) {}

  get connected(): boolean {
    return this.open;
  }

  set token(token: string | null | undefined) {
    this.opts.token = token;
  }

  start(): void {
    if (this.closed || this.ws) return;
    const u = new URL("/v1/ws", this.opts.url);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    // Browsers cannot set headers on a WebSocket handshake: the token goes in the URL.
    if (this.opts.token) u.searchParams.set("token", this.opts.token);
    let ws: WebSocket;
    try {
      ws = new this.opts.WebSocket(u.toString());
    } catch {
      return this.schedule();
    }
    this.ws = ws;
    ws.onopen = () => {
      this.open = true;
      this.failures = 0;
      this.heard = Date.now();
      this.beat = setInterval(() => this.heartbeat(), Math.max(250, this.opts.heartbeat / 2));
      this.events.open();
    };
    ws.onmessage = (ev) => {
      this.heard = Date.now();
      let frame: any;
      try {
        frame = JSON.parse(String(ev.data));
      } catch {
        return;
      }
      if (frame && typeof frame.push === "string") return this.events.push(frame as Push);
      const reply = frame as Reply;
      const p = typeof reply.id === "number" ? this.waiting.get(reply.id) : undefined;
      if (!p) return;
      this.waiting.delete(reply.id as number);
      if (p.timer) clearTimeout(p.timer);
      if ("error" in reply) p.reject(KoraError.from(reply.error as ErrorBody));
      else p.resolve(reply.result);
    };
    ws.onerror = () => {};
    ws.onclose = () => this.lost(ws);
  }

  /** Drops the connection now and connects again after the backoff (a transient refusal). */
  restart(): void {
    this.ws?.close();
    if (this.ws) this.lost(this.ws);
  }

  /** Connects again now if waiting for a backoff (the browser says it is back online). */
  hurry(): void {
    if (this.retry && !this.ws && !this.closed) {
      clearTimeout(this.retry);
      this.retry = undefined;
      this.failures = 0;
      this.start();
    }
  }

  /** Sends a request; the promise settles with its reply, or rejects when the link drops. */
  request<T = unknown>(body: Body, timeout = this.opts.requestTimeout): Promise<T> {
    if (!this.open || !this.ws) {
      return Promise.reject(new KoraError("unavailable", "not connected to the server"));
    }
    const id = this.nextId++;
    const ws = this.ws;
    return new Promise<T>((resolve, reject) => {
      const p: Pending = { resolve, reject };
      if (timeout > 0) {
        p.timer = setTimeout(() => {
          this.waiting.delete(id);
          reject(new KoraError("unavailable", `no reply from the server in ${timeout} ms`));
        }, timeout);
      }
      this.waiting.set(id, p);
      ws.send(JSON.stringify({ ...body, id }));
    });
  }

  /** Sends a frame that gets no reply (`cast`). Dropped when not connected. */
  send(body: Body): void {
    if (this.open && this.ws) this.ws.send(JSON.stringify(body));
  }

  close(): void {
    this.closed = true;
    if (this.retry) clearTimeout(this.retry);
    const ws = this.ws;
    if (ws) {
      ws.close();
      this.lost(ws);
    }
  }

  private heartbeat(): void {
    const silent = Date.now() - this.heard;
    if (silent > 3 * this.opts.heartbeat) return this.restart();
    if (silent > this.opts.heartbeat) this.request({ op: "ping" }).catch(() => {});
  }

  private lost(ws: WebSocket): void {
    if (this.ws !== ws) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    this.ws = null;
    const wasOpen = this.open;
    this.open = false;
    if (this.beat) clearInterval(this.beat);
    const waiting = [...this.waiting.values()];
    this.waiting.clear();
    for (const p of waiting) {
      if (p.timer) clearTimeout(p.timer);
      p.reject(new KoraError("unavailable", "the connection to the server was lost"));
    }
    if (wasOpen) this.events.close();
    if (!this.closed) this.schedule();
  }

  private schedule(): void {
    // Each wait is drawn from the upper half of an exponentially growing bound.
    const bound = Math.min(this.opts.backoffMax, this.opts.backoffMin * 2 ** Math.min(this.failures, 20));
    this.failures++;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.start();
    }, bound / 2 + (Math.random() * bound) / 2);
  }
}
