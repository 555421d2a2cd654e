// The shared protocol vectors (libs/protocol_vectors) replayed against the TS client,
// through a scripted in-memory socket; libs/client/vectors_test.py replays the same
// files against the Python client over a real WebSocket.
import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";

import { Backoff } from "./backoff.mjs";
import { type Ack, type SocketLike, SyncClient } from "./client.mjs";
import type { JsonObject } from "./merge_patch.mjs";

const VECTORS = "libs/protocol_vectors/vectors"; // runfiles-relative (js_test runs from the root)

type Step = { [key: string]: unknown };
type Vector = { name: string; description: string; steps: Step[] };

/** A socket the test plays the server side of. */
class ScriptedSocket implements SocketLike {
  readonly protocol = "syncbridge.v1";
  onopen: ((event: unknown) => void) | null = null;
  onmessage: ((event: { data: unknown }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  onerror: ((event: unknown) => void) | null = null;
  readonly sent: string[] = [];
  closedWith: number | null = null;
  private wake: (() => void) | null = null;

  constructor(readonly protocols: string[]) {}

  send(data: string): void {
    if (this.closedWith !== null) throw new Error("send on a closed socket");
    this.sent.push(data);
    this.wake?.();
  }

  close(code = 1000, reason = ""): void {
    if (this.closedWith !== null) return;
    this.closedWith = code;
    this.wake?.();
    // As in a browser: the close event comes later, with the code of the handshake.
    setTimeout(() => this.onclose?.({ code, reason }), 0);
  }

  async next(within = 2000): Promise<JsonObject> {
    const deadline = Date.now() + within;
    while (this.sent.length === 0) {
      if (Date.now() > deadline) throw new Error("the client sent nothing");
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, 20);
      });
    }
    return JSON.parse(this.sent.shift()!) as JsonObject;
  }
}

function subset(actual: unknown, expected: unknown): boolean {
  if (typeof expected !== "object" || expected === null || Array.isArray(expected)) {
    return JSON.stringify(actual) === JSON.stringify(expected);
  }
  if (typeof actual !== "object" || actual === null) return false;
  return Object.entries(expected).every(([k, v]) => subset((actual as JsonObject)[k], v));
}

const CAMEL: { [key: string]: string } = {
  op_id: "opId",
  session_id: "sessionId",
  active_device: "activeDevice",
};

function observed(client: SyncClient, key: string): unknown {
  if (key === "snapshots_unrecovered") return client.stats.snapshotsUnrecovered;
  return (client as unknown as JsonObject)[CAMEL[key] ?? key];
}

async function eventually(check: () => boolean, what: () => string, within = 2000): Promise<void> {
  const deadline = Date.now() + within;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(what());
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function replay(vector: Vector): Promise<void> {
  const sockets: ScriptedSocket[] = [];
  const client = new SyncClient({
    url: ["ws://edge-a/session/connect", "ws://edge-b/session/connect"],
    deviceId: "tab",
    token: "t0k3n",
    backoff: new Backoff(0.01, 0.05),
    requestTimeoutMs: 3000,
    socketFactory: (_url, protocols) => {
      const socket = new ScriptedSocket(protocols);
      sockets.push(socket);
      return socket;
    },
  });
  const acks = new Map<string, Ack>();
  const failures = new Map<string, Error>();
  const track = (opId: string, promise: Promise<Ack>) =>
    promise.then(
      (ack) => void acks.set(opId, ack),
      (error: Error) => void failures.set(opId, error),
    );
  let socket: ScriptedSocket | null = null;
  let ref: unknown = null;
  let connections = 0;
  for (const [index, step] of vector.steps.entries()) {
    const where = `${vector.name} step ${index}: ${JSON.stringify(step)}`;
    if (step["app"] === "open") {
      client.open(step["session_id"] as string | undefined).catch(() => undefined);
    } else if (step["app"] === "update") {
      const opId = String(step["op_id"]);
      void track(opId, client.update(step["patch"] as JsonObject, { opId }));
    } else if (step["app"] === "handoff") {
      const opId = String(step["op_id"]);
      void track(opId, client.handoff(String(step["to_device"]), { opId }));
    } else if ("client_connects" in step) {
      await eventually(() => sockets.length > connections, () => `${where}: no new connection`);
      socket = sockets[connections]!;
      connections += 1;
      assert.deepEqual(socket.protocols, ["syncbridge.v1", "bearer.t0k3n"], where);
      socket.onopen?.({});
    } else if ("client_sends" in step) {
      const message = await socket!.next();
      assert.ok(subset(message, step["client_sends"]), `${where}: got ${JSON.stringify(message)}`);
      ref = message["ref"] ?? null;
    } else if ("server_sends" in step) {
      const message = { ...(step["server_sends"] as JsonObject) };
      if (message["ref"] === "$ref") message["ref"] = ref as string;
      socket!.onmessage?.({ data: JSON.stringify(message) });
    } else if ("server_closes" in step) {
      const code = Number(step["server_closes"]);
      socket!.closedWith = code;
      socket!.onclose?.({ code, reason: "" });
    } else if ("client_closes" in step) {
      await eventually(() => socket!.closedWith !== null, () => `${where}: the client did not close`);
      assert.equal(socket!.closedWith, step["client_closes"], where);
    } else if ("expect" in step) {
      const want = step["expect"] as JsonObject;
      await eventually(
        () => Object.entries(want).every(([k, v]) => subset(observed(client, k), v)),
        () => `${where}: ${JSON.stringify(Object.fromEntries(Object.keys(want).map((k) => [k, observed(client, k)])))}`,
      );
    } else if ("expect_ack" in step) {
      const want = step["expect_ack"] as JsonObject;
      const opId = String(want["op_id"]);
      await eventually(() => acks.has(opId), () => `${where}: no ack (${failures.get(opId)})`);
      const got = acks.get(opId)! as unknown as JsonObject;
      for (const [k, v] of Object.entries(want)) assert.deepEqual(got[CAMEL[k] ?? k], v, where);
    } else if ("expect_no_connection" in step) {
      await new Promise((resolve) => setTimeout(resolve, Number(step["expect_no_connection"]) * 1000));
      assert.equal(sockets.length, connections, `${where}: the client reconnected`);
    } else {
      throw new Error(`${where}: unknown step`);
    }
  }
  await client.close({ leave: false });
}

const files = readdirSync(VECTORS).filter((f) => f.endsWith(".json")).sort();

test("the vectors are there", () => {
  assert.ok(files.length >= 9, `only ${files.length} vectors in ${VECTORS}`);
});

for (const file of files) {
  const vector = JSON.parse(readFileSync(join(VECTORS, file), "utf8")) as Vector;
  test(`${vector.name}: ${vector.description}`, () => replay(vector));
}
