/**
 * The browser client of SyncBridge's WebSocket protocol (services/ws_edge/README.md),
 * with the behaviour of the Python client (libs/client/client.py):
 *
 *     const client = connect({ url, deviceId: "tab-1", token: fetchToken });
 *     client.onChange((message) => render(client.state, client.version));
 *     await client.open();                 // or open(sessionId) to join one
 *     await client.update({ page: 2 });    // resolves once core committed it
 *     await client.handoff("laptop");
 *
 * One connection is kept up: after any close but the fatal ones it reconnects
 * with jittered exponential backoff, resumes at (session, epoch, version) on
 * whichever replica answers, and re-sends every unacknowledged update with its
 * op_id. `state` and `version` move only through the ordered change stream.
 */
import { Backoff } from "./backoff.mjs";
import {
  APP_SUBPROTOCOL,
  BEARER_SUBPROTOCOL_PREFIX,
  CLOSE_DROPPED,
  CLOSE_GAP,
  CLOSE_TOKEN_EXPIRED,
  FATAL_CLOSE_CODES,
  TRANSIENT_ERRORS,
  TRANSIENT_REFUSALS,
} from "./codes.mjs";
import { type JsonObject, mergeState } from "./merge_patch.mjs";
import type {
  ClientMessage,
  ServerAck,
  ServerChange,
  ServerError,
  ServerHandoff,
  ServerMessage,
  ServerPresence,
  ServerSnapshot,
  ServerWelcome,
} from "./protocol_types.mjs";

export type { Json, JsonObject } from "./merge_patch.mjs";
export { Backoff } from "./backoff.mjs";
export type * from "./protocol_types.mjs";

export type Session = ServerSnapshot["session"];
export type Device = Session["devices"][number];
/** What `onChange` callbacks receive: a message after it was applied. */
export type Applied = ServerChange | ServerHandoff | ServerSnapshot | ServerPresence;
export type TokenSource = string | (() => Promise<string>);

/** The parts of a WebSocket the client uses: the browser's, or a test's fake. */
export interface SocketLike {
  readonly protocol: string;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}
export type SocketFactory = (url: string, protocols: string[]) => SocketLike;

/** What happened to the connection, for logs and the demo page. */
export type ClientEvent =
  | { kind: "connecting"; url: string; attempt: number }
  | { kind: "connected"; edgeId: string }
  | { kind: "opened"; sessionId: string; version: number }
  | { kind: "resumed"; version: number; changes: number }
  | { kind: "unrecovered"; reason: string; version: number }
  | { kind: "closed"; code: number; reason: string; retryInSeconds: number | null }
  | { kind: "refused"; code: string; message: string }
  | { kind: "token_refreshed"; expiresAt: number }
  | { kind: "gap"; have: number; got: number };

export interface Ack {
  opId: string;
  version: number;
  epoch: number;
  outcome: "applied" | "rebased";
  replayed: boolean;
}

/** The server refused a request; `code` is the protocol's stable error code. */
export class ClientError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details: { [key: string]: unknown } = {},
  ) {
    super(`${code}: ${message}`);
    this.name = "ClientError";
  }
}

/** The client was closed (or told to stay away) before the request ended. */
export class ClientClosed extends Error {
  constructor(message = "client closed") {
    super(message);
    this.name = "ClientClosed";
  }
}

export interface ClientOptions {
  /** One URL, or several replicas' URLs tried in turn after failures. */
  url: string | string[];
  deviceId: string;
  /** A token, or a function fetching a fresh one (called again after 4001 and before expiry). */
  token: TokenSource;
  backoff?: Backoff;
  /** Refresh this many seconds before the token expires. */
  refreshMarginSeconds?: number;
  requestTimeoutMs?: number;
  /** Defaults to the browser's WebSocket. */
  socketFactory?: SocketFactory;
  /** Seconds since the epoch (tests move time). */
  now?: () => number;
}

export interface Stats {
  connects: number;
  closeCodes: number[];
  snapshotsUnrecovered: number;
  resends: number;
  transientRefusals: string[];
}

type Op = {
  message: { type: "update" | "handoff"; op_id: string; [key: string]: unknown };
  resolve: (ack: Ack) => void;
  reject: (error: Error) => void;
  sent: boolean;
};

type Waiter = { resolve: (message: ServerMessage) => void; reject: (error: Error) => void };

function browserSocket(url: string, protocols: string[]): SocketLike {
  return new WebSocket(url, protocols) as unknown as SocketLike;
}

function newOpId(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A client for one device; nothing is sent before `open()`. */
export function connect(options: ClientOptions): SyncClient {
  return new SyncClient(options);
}

export class SyncClient {
  readonly deviceId: string;
  readonly urls: string[];
  sessionId: string | null = null;
  epoch = 0;
  version = 0;
  state: JsonObject = {};
  activeDevice = "";
  devices: Device[] = [];
  ended = false;
  connected = false;
  readonly stats: Stats = {
    connects: 0,
    closeCodes: [],
    snapshotsUnrecovered: 0,
    resends: 0,
    transientRefusals: [],
  };

  private readonly tokenSource: TokenSource;
  private readonly backoff: Backoff;
  private readonly refreshMargin: number;
  private readonly requestTimeoutMs: number;
  private readonly socketFactory: SocketFactory;
  private readonly now: () => number;
  private urlIndex = 0;
  private token: string | null = null;
  private tokenExpiresAt = 0;
  private socket: SocketLike | null = null;
  private stopping = false;
  private fatal: Error | null = null;
  private openRequest: ClientMessage | null = null;
  private opened: { resolve: (s: Session) => void; reject: (e: Error) => void } | null = null;
  private readonly waiting = new Map<string, Waiter>();
  private readonly pending = new Map<string, Op>(); // in the order the app made them
  private inFlight: string | null = null;
  // The version of our own last acknowledged op: the next op is made against a
  // state that includes it, so it waits until the stream got that far.
  private ownFloor = 0;
  private refs = 0;
  private readonly changeCallbacks: Array<(message: Applied) => void> = [];
  private readonly eventCallbacks: Array<(event: ClientEvent) => void> = [];
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private refreshTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(options: ClientOptions) {
    this.urls = typeof options.url === "string" ? [options.url] : [...options.url];
    if (this.urls.length === 0) {
      throw new RangeError("at least one URL is needed");
    }
    this.deviceId = options.deviceId;
    this.tokenSource = options.token;
    this.backoff = options.backoff ?? new Backoff();
    this.refreshMargin = options.refreshMarginSeconds ?? 30;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
    this.socketFactory = options.socketFactory ?? browserSocket;
    this.now = options.now ?? (() => Date.now() / 1000);
  }

  // -- public API ----------------------------------------------------------

  /** Calls `callback(message)` after each change, handoff, snapshot or presence was applied. */
  onChange(callback: (message: Applied) => void): () => void {
    this.changeCallbacks.push(callback);
    return () => this.changeCallbacks.splice(this.changeCallbacks.indexOf(callback) >>> 0, 1);
  }

  /** Connection events (connected, closed, resumed, unrecovered, ...): for logs. */
  onEvent(callback: (event: ClientEvent) => void): () => void {
    this.eventCallbacks.push(callback);
    return () => this.eventCallbacks.splice(this.eventCallbacks.indexOf(callback) >>> 0, 1);
  }

  /** Connects and opens (or creates, without `sessionId`) a session; resolves with its snapshot. */
  open(sessionId?: string, initialState?: JsonObject): Promise<Session> {
    if (this.openRequest !== null) {
      return Promise.reject(new Error("open() was already called"));
    }
    const request: ClientMessage = { type: "open" };
    if (sessionId) request.session_id = sessionId;
    if (initialState !== undefined) request.initial_state = initialState;
    this.openRequest = request;
    const result = new Promise<Session>((resolve, reject) => {
      this.opened = { resolve, reject };
    });
    void this.connectOnce();
    return result;
  }

  /** A merge patch against the current version; kept and re-sent with its op_id until acknowledged. */
  update(patch: JsonObject, options: { requireLease?: boolean; opId?: string } = {}): Promise<Ack> {
    return this.track({
      type: "update",
      op_id: options.opId ?? newOpId(),
      patch,
      require_lease: options.requireLease ?? false,
    });
  }

  /** Moves the active-device lease to `toDevice`; every device gets a `handoff`. */
  handoff(toDevice: string, options: { opId?: string } = {}): Promise<Ack> {
    return this.track({ type: "handoff", op_id: options.opId ?? newOpId(), to_device: toDevice });
  }

  /** Sends a new token (from the token source if none is given). */
  async refresh(token?: string): Promise<void> {
    this.token = token ?? (await this.freshToken());
    const answer = (await this.request({ type: "refresh", token: this.token })) as ServerAck;
    this.tokenExpiresAt = Number(answer.token_expires_at ?? 0);
    this.emit({ kind: "token_refreshed", expiresAt: this.tokenExpiresAt });
    this.scheduleRefresh();
  }

  /** Updates sent or queued but not acknowledged yet. */
  get unacknowledged(): number {
    return this.pending.size;
  }

  /** The URL the client (re)connects to next. */
  get url(): string {
    return this.urls[this.urlIndex % this.urls.length]!;
  }

  /** Leaves (presence goes offline at once) and stops reconnecting. */
  async close(options: { leave?: boolean } = {}): Promise<void> {
    if (this.stopping) return;
    const socket = this.socket;
    if ((options.leave ?? true) && socket !== null && this.connected) {
      try {
        await Promise.race([this.request({ type: "leave" }), sleep(2000)]);
      } catch {
        // closing anyway
      }
    }
    this.stopping = true;
    this.clearTimers();
    socket?.close(1000, "client closed");
    this.failAll(new ClientClosed());
  }

  /** Drops the connection now, as a network loss would; the client reconnects and resumes. */
  drop(): void {
    // The connection is gone for the app at once, as after a lost network: an
    // offline page's socket can sit in CLOSING for long, since its close
    // handshake never crosses the network. Its own close event is then ignored.
    const socket = this.socket;
    if (socket === null) return;
    socket.close(CLOSE_DROPPED, "dropped by the app");
    this.detach(CLOSE_DROPPED, "dropped by the app");
  }

  // -- connection loop -----------------------------------------------------

  private async connectOnce(): Promise<void> {
    this.reconnectTimer = null;
    if (this.stopping) return;
    let token: string;
    try {
      token = this.token ?? (await this.freshToken());
    } catch {
      this.scheduleReconnect(1006, "token source failed");
      return;
    }
    this.token = token;
    const url = this.url;
    this.emit({ kind: "connecting", url, attempt: this.backoff.attempt });
    let socket: SocketLike;
    try {
      socket = this.socketFactory(url, [APP_SUBPROTOCOL, BEARER_SUBPROTOCOL_PREFIX + token]);
    } catch {
      this.scheduleReconnect(1006, "could not connect");
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      this.stats.connects += 1;
      void this.handshake(socket);
    };
    socket.onmessage = (event) => {
      if (this.socket !== socket || typeof event.data !== "string") return;
      let message: unknown;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;
      }
      if (typeof message === "object" && message !== null) {
        this.dispatch(message as ServerMessage);
      }
    };
    socket.onerror = () => {
      // A close event always follows; it decides what happens next.
    };
    socket.onclose = (event) => {
      if (this.socket !== socket) return;
      this.detach(event.code, event.reason);
    };
  }

  /** The current socket is closed (or given up): fail what waits on it, then reconnect or stop. */
  private detach(code: number, reason: string): void {
    this.socket = null;
    this.connected = false;
    this.inFlight = null;
    for (const waiter of this.waiting.values()) waiter.reject(new Error("connection lost"));
    this.waiting.clear();
    this.stats.closeCodes.push(code);
    this.afterClose(code, reason);
  }

  private afterClose(code: number, reason: string): void {
    if (this.stopping) {
      this.emit({ kind: "closed", code, reason, retryInSeconds: null });
      return;
    }
    if (FATAL_CLOSE_CODES.has(code)) {
      this.fatal = new ClientClosed(`server closed the connection with ${code}`);
      this.emit({ kind: "closed", code, reason, retryInSeconds: null });
      this.failAll(this.fatal);
      this.stopping = true;
      this.clearTimers();
      return;
    }
    if (code === CLOSE_TOKEN_EXPIRED) {
      this.token = null; // expired: ask the source for a new one
    }
    this.scheduleReconnect(code, reason);
  }

  private scheduleReconnect(code: number, reason: string): void {
    if (this.stopping) return;
    this.urlIndex += 1; // with several replicas' URLs, spread reconnects over them
    const delay = this.backoff.nextDelay();
    this.emit({ kind: "closed", code, reason, retryInSeconds: delay });
    this.reconnectTimer = setTimeout(() => void this.connectOnce(), delay * 1000);
  }

  private async handshake(socket: SocketLike): Promise<void> {
    try {
      const welcome = (await this.request({ type: "hello", device_id: this.deviceId })) as ServerWelcome;
      this.tokenExpiresAt = Number(welcome.token_expires_at ?? 0);
      this.scheduleRefresh();
      this.emit({ kind: "connected", edgeId: welcome.edge_id });
      let answer: ServerMessage;
      const resuming = this.sessionId !== null;
      if (!resuming) {
        answer = await this.request({ ...this.openRequest! });
      } else {
        answer = await this.request({
          type: "resume",
          session_id: this.sessionId!,
          epoch: this.epoch,
          version: this.version,
        });
      }
      if (this.socket !== socket) return;
      if (answer.type === "ack" && answer.of === "resume") {
        this.emit({ kind: "resumed", version: this.version, changes: Number(answer.changes ?? 0) });
      } else if (answer.type === "snapshot" && !resuming) {
        this.emit({ kind: "opened", sessionId: answer.session.session_id, version: this.version });
      }
      if (this.opened !== null && answer.type === "snapshot") {
        this.opened.resolve(answer.session);
        this.opened = null;
      }
      this.backoff.reset();
      this.connected = true;
      this.inFlight = null;
      this.pump();
    } catch (error) {
      if (this.socket !== socket) return;
      if (error instanceof ClientError) {
        this.emit({ kind: "refused", code: error.code, message: error.message });
        if (TRANSIENT_REFUSALS.has(error.code)) {
          // Refused for now (core unavailable, rate limited, a replica draining):
          // nothing is lost, try again on a new connection after the backoff.
          this.stats.transientRefusals.push(error.code);
          socket.close(1000, "retrying");
          this.socket = null;
          this.scheduleReconnect(1013, error.code);
          return;
        }
        // Refused for good (session_not_found, unauthorized): retrying cannot help.
        this.fatal = error;
        this.stopping = true;
        socket.close(1000, error.code);
        this.socket = null;
        this.failAll(error);
      }
      // Anything else is a lost connection: its close event reconnects.
    }
  }

  // -- requests ------------------------------------------------------------

  /** Sends `message` with a fresh ref; resolves with the answer, rejects with ClientError. */
  private request(message: ClientMessage): Promise<ServerMessage> {
    const socket = this.socket;
    if (socket === null) return Promise.reject(new Error("not connected"));
    this.refs += 1;
    const ref = `r${this.refs}`;
    return new Promise<ServerMessage>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(ref);
        reject(new Error(`no answer to ${message.type} within ${this.requestTimeoutMs} ms`));
      }, this.requestTimeoutMs);
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.waiting.delete(ref);
        settle();
      };
      this.waiting.set(ref, {
        resolve: (answer) => done(() => resolve(answer)),
        reject: (error) => done(() => reject(error)),
      });
      socket.send(JSON.stringify({ ...message, ref }));
    });
  }

  private track(message: Op["message"]): Promise<Ack> {
    if (this.fatal !== null || this.stopping) {
      return Promise.reject(this.fatal ?? new ClientClosed());
    }
    return new Promise<Ack>((resolve, reject) => {
      this.pending.set(message.op_id, { message, resolve, reject, sent: false });
      queueMicrotask(() => this.pump());
    });
  }

  /**
   * Sends the oldest unacknowledged op unless one is already in flight. One op at a
   * time, in order: the next one's base_version is taken when it is sent, after the
   * previous one was applied, so a device writing the same field twice in a row never
   * conflicts with itself. An op keeps its base_version and op_id when re-sent.
   */
  private pump(): void {
    const socket = this.socket;
    if (socket === null || !this.connected || this.inFlight !== null) return;
    const op = this.pending.values().next().value as Op | undefined;
    if (op === undefined) return;
    const message = op.message;
    if (message.type === "update" && !("base_version" in message)) {
      if (this.version < this.ownFloor) return; // notify() pumps when the stream gets there
      message.base_version = this.version;
      message.epoch = this.epoch;
    }
    if (op.sent) this.stats.resends += 1;
    op.sent = true;
    this.inFlight = message.op_id;
    socket.send(JSON.stringify(message));
  }

  private settled(opId: string): void {
    this.pending.delete(opId);
    if (this.inFlight === opId) this.inFlight = null;
    queueMicrotask(() => this.pump());
  }

  // -- incoming ------------------------------------------------------------

  private dispatch(message: ServerMessage): void {
    switch (message.type) {
      case "change":
      case "handoff":
        this.applyChange(message);
        break;
      case "snapshot":
        this.applySnapshot(message);
        break;
      case "presence":
        if (message.session_id === this.sessionId) {
          this.devices = [...message.devices];
          this.notify(message);
        }
        break;
      case "ack":
        this.acked(message);
        break;
      case "error":
        this.errored(message);
        return;
    }
    const ref = "ref" in message ? message.ref : undefined;
    if (typeof ref === "string") this.waiting.get(ref)?.resolve(message);
  }

  private applySnapshot(message: ServerSnapshot): void {
    const session = message.session;
    if (!message.recovered) {
      this.stats.snapshotsUnrecovered += 1;
    }
    this.sessionId = session.session_id;
    this.epoch = session.epoch;
    this.version = session.version;
    this.state = { ...session.state };
    this.activeDevice = session.active_device;
    this.devices = [...session.devices];
    this.ended = false;
    this.ownFloor = Math.min(this.ownFloor, this.version);
    if (!message.recovered) {
      // The history was gone: changes may have been skipped; the app should know.
      this.emit({ kind: "unrecovered", reason: message.reason ?? "unknown", version: this.version });
    }
    this.notify(message);
  }

  private applyChange(message: ServerChange | ServerHandoff): void {
    if (message.session_id !== this.sessionId) return;
    if (message.epoch !== this.epoch || message.version <= this.version) {
      return; // a duplicate, or from an epoch a snapshot already replaced
    }
    if (message.version !== this.version + 1) {
      // The server promises no silent gap; if one shows, start over from a resume.
      this.emit({ kind: "gap", have: this.version, got: message.version });
      this.socket?.close(CLOSE_GAP, "gap");
      return;
    }
    this.version = message.version;
    if (message.type === "handoff") {
      this.activeDevice = message.active_device;
    } else if (message.kind === "ended") {
      this.ended = true;
    } else if (message.patch !== undefined) {
      this.state = mergeState(this.state, message.patch);
    }
    this.notify(message);
  }

  private notify(message: Applied): void {
    if (this.pending.size > 0 && this.inFlight === null && this.version >= this.ownFloor) {
      queueMicrotask(() => this.pump());
    }
    for (const callback of [...this.changeCallbacks]) {
      try {
        callback(message);
      } catch (error) {
        console.error("onChange callback failed", error);
      }
    }
  }

  private acked(message: ServerAck): void {
    const opId = message.op_id;
    const op = typeof opId === "string" ? this.pending.get(opId) : undefined;
    if (op === undefined || typeof opId !== "string") return;
    this.settled(opId);
    const ack: Ack = {
      opId,
      version: Number(message.version),
      epoch: Number(message.epoch),
      outcome: message.outcome ?? "applied",
      replayed: message.replayed ?? false,
    };
    if (ack.epoch === this.epoch) this.ownFloor = Math.max(this.ownFloor, ack.version);
    this.advanceToOwn(op.message, ack);
    op.resolve(ack);
  }

  /**
   * Applies our own acknowledged op at once when it directly follows what we have:
   * its `change` is on its way through the bus, but the next update's base_version
   * must not be stale. Only an op applied as sent (not rebased) is known exactly;
   * the change arriving later is then a duplicate and dropped.
   */
  private advanceToOwn(sent: Op["message"], ack: Ack): void {
    if (ack.epoch !== this.epoch || ack.version !== this.version + 1 || this.sessionId === null) return;
    const base = { session_id: this.sessionId, epoch: ack.epoch, version: ack.version, op_id: ack.opId };
    const committedAt = new Date().toISOString();
    if (sent.type === "update" && ack.outcome === "applied") {
      const patch = sent.patch as JsonObject;
      this.version = ack.version;
      this.state = mergeState(this.state, patch);
      this.notify({ type: "change", kind: "update", device_id: this.deviceId, committed_at: committedAt, patch, ...base });
    } else if (sent.type === "handoff") {
      const toDevice = String(sent.to_device);
      this.version = ack.version;
      this.activeDevice = toDevice;
      this.notify({
        type: "handoff",
        device_id: this.deviceId,
        active_device: toDevice,
        lease_fence: Number(ack.epoch),
        committed_at: committedAt,
        ...base,
      });
    }
  }

  private errored(message: ServerError): void {
    const details = (message.details ?? {}) as { [key: string]: unknown };
    const error = new ClientError(message.code, message.message, details);
    if (typeof message.ref === "string") this.waiting.get(message.ref)?.reject(error);
    if (message.code === "token_expiring") {
      void this.refreshQuietly();
    }
    let opId = details["op_id"];
    if (message.code === "rate_limited" && typeof opId !== "string") {
      opId = this.inFlight; // refused before it was read, so it names no op: the one in flight
    }
    const op = typeof opId === "string" ? this.pending.get(opId) : undefined;
    if (op === undefined || typeof opId !== "string") return;
    if (TRANSIENT_ERRORS.has(message.code)) {
      const delay = Number(details["retry_after"] ?? 0.5);
      setTimeout(() => {
        if (this.inFlight === opId) {
          this.inFlight = null;
          this.pump();
        }
      }, delay * 1000);
      return;
    }
    this.settled(opId);
    op.reject(error);
  }

  // -- tokens --------------------------------------------------------------

  private async freshToken(): Promise<string> {
    return typeof this.tokenSource === "string" ? this.tokenSource : await this.tokenSource();
  }

  private scheduleRefresh(): void {
    if (this.refreshTimer !== null) clearTimeout(this.refreshTimer);
    this.refreshTimer = null;
    if (typeof this.tokenSource === "string" || !this.tokenExpiresAt) return;
    const delay = Math.max(0, this.tokenExpiresAt - this.refreshMargin - this.now());
    this.refreshTimer = setTimeout(() => void this.refreshQuietly(), delay * 1000);
  }

  private async refreshQuietly(): Promise<void> {
    try {
      await this.refresh();
    } catch {
      // The server closes with 4001 if no refresh comes; the reconnect fetches a token.
    }
  }

  // -- shutdown ------------------------------------------------------------

  private clearTimers(): void {
    if (this.reconnectTimer !== null) clearTimeout(this.reconnectTimer);
    if (this.refreshTimer !== null) clearTimeout(this.refreshTimer);
    this.reconnectTimer = null;
    this.refreshTimer = null;
  }

  private failAll(error: Error): void {
    for (const op of this.pending.values()) op.reject(error);
    this.pending.clear();
    this.opened?.reject(error);
    this.opened = null;
  }

  private emit(event: ClientEvent): void {
    for (const callback of [...this.eventCallbacks]) {
      try {
        callback(event);
      } catch (error) {
        console.error("onEvent callback failed", error);
      }
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
