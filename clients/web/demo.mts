// The demo page (index.html): one device of one user, its session, devices, lease and
// a live log. Settings come from the URL fragment, which never reaches a server log:
//   /demo/#token=<jwt>&device=tab-1[&session=<id>][&url=ws://a/session/connect,ws://b/...]
//   [&backoff=<base>,<cap>]  (seconds: tests shorten it)
import { type Applied, Backoff, type ClientEvent, connect } from "./client.mjs";

const params = new URLSearchParams(location.hash.slice(1));
const token = params.get("token") ?? "";
const deviceId = params.get("device") ?? `tab-${Math.random().toString(16).slice(2, 6)}`;
const sessionId = params.get("session") ?? undefined;
const url = params.get("url") ?? `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/session/connect`;

const [base, cap] = (params.get("backoff") ?? "0.2,10").split(",").map(Number);

const $ = (id: string): HTMLElement => document.getElementById(id)!;
const log: string[] = [];
const applied: number[] = []; // versions of the changes and handoffs applied, in order
const events: ClientEvent[] = [];

function line(text: string): void {
  const time = new Date().toISOString().slice(11, 23);
  log.push(`${time} ${text}`);
  const row = document.createElement("div");
  row.textContent = `${time} ${text}`;
  $("log").append(row);
  $("log").scrollTop = $("log").scrollHeight;
}

const client = connect({ url: url.split(","), deviceId, token, backoff: new Backoff(base, cap) });

function render(): void {
  $("device").textContent = deviceId;
  $("status").textContent = client.connected ? "connected" : "reconnecting";
  $("status").dataset["connected"] = String(client.connected);
  $("session").textContent =
    `id       ${client.sessionId ?? "-"}\nepoch    ${client.epoch}\nversion  ${client.version}\n` +
    `pending  ${client.unacknowledged}\nlease    ${client.activeDevice || "-"}`;
  $("state").textContent = JSON.stringify(client.state, null, 2);
  const devices = $("devices");
  devices.replaceChildren();
  const select = $("handoff-to") as HTMLSelectElement;
  const chosen = select.value;
  select.replaceChildren();
  for (const device of client.devices) {
    const row = document.createElement("div");
    row.className = device.online ? "online" : "offline";
    const lease = device.device_id === client.activeDevice ? "  ◆ lease" : "";
    row.textContent = `${device.online ? "●" : "○"} ${device.device_id}${lease}`;
    devices.append(row);
    select.append(new Option(device.device_id, device.device_id, false, device.device_id === chosen));
  }
}

function describe(message: Applied): string {
  switch (message.type) {
    case "change":
      return `change v${message.version} ${message.kind} by ${message.device_id} ${JSON.stringify(message.patch ?? {})}`;
    case "handoff":
      return `handoff v${message.version}: lease to ${message.active_device}`;
    case "snapshot":
      return `snapshot v${message.session.version}${message.recovered ? "" : ` (recovered: false, ${message.reason ?? "?"})`}`;
    case "presence":
      return `presence: ${message.devices.filter((d) => d.online).map((d) => d.device_id).join(", ")} online`;
  }
}

function describeEvent(event: ClientEvent): string {
  switch (event.kind) {
    case "closed":
      return `closed ${event.code}${event.reason ? ` (${event.reason})` : ""}` +
        (event.retryInSeconds === null ? ", not reconnecting" : `, retry in ${event.retryInSeconds.toFixed(2)} s`);
    case "resumed":
      return `resumed at v${event.version} (${event.changes} missed changes replayed)`;
    case "unrecovered":
      return `RECOVERED: FALSE — history gone (${event.reason}); state replaced by a snapshot at v${event.version}`;
    default:
      return `${event.kind} ${JSON.stringify({ ...event, kind: undefined })}`;
  }
}

client.onChange((message) => {
  if (message.type === "change" || message.type === "handoff") applied.push(message.version);
  line(describe(message));
  render();
});
client.onEvent((event) => {
  events.push(event);
  line(describeEvent(event));
  render();
});

$("update").addEventListener("click", () => {
  const key = ($("key") as HTMLInputElement).value;
  const value = ($("value") as HTMLInputElement).value;
  client.update({ [key]: value }).then(
    (ack) => {
      line(`ack ${ack.opId.slice(0, 8)} v${ack.version} ${ack.outcome}${ack.replayed ? " (replayed)" : ""}`);
      render();
    },
    (error: Error) => line(`update failed: ${error.message}`),
  );
  render();
});
$("handoff").addEventListener("click", () => {
  const to = ($("handoff-to") as HTMLSelectElement).value;
  if (to) client.handoff(to).catch((error: Error) => line(`handoff failed: ${error.message}`));
});
$("drop").addEventListener("click", () => {
  line("dropping the connection");
  client.drop();
});

// Tests drive the page through this (clients/web/browser_test.py).
(window as unknown as { syncbridge: object }).syncbridge = { client, log, applied, events };

render();
client.open(sessionId).then(
  (session) => line(`opened ${session.session_id} at v${session.version}`),
  (error: Error) => line(`open failed: ${error.message}`),
);
