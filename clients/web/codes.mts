/**
 * Close codes and error codes the client acts on (services/ws_edge/README.md,
 * "Close codes" and "Error codes"); codes_test keeps them in line with the
 * README's tables.
 */

/** The protocol version this client speaks: offered first in Sec-WebSocket-Protocol. */
export const APP_SUBPROTOCOL = "syncbridge.v1";
/** Browsers cannot set headers on a WebSocket: the token travels as `bearer.<jwt>`. */
export const BEARER_SUBPROTOCOL_PREFIX = "bearer.";

export const CLOSE_NORMAL = 1000;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_ABNORMAL = 1006; // the browser's code when no close frame came (or the upgrade was refused)
export const CLOSE_TOKEN_EXPIRED = 4001;
export const CLOSE_REPLACED = 4010;
export const CLOSE_UNAUTHORIZED = 4401;
export const CLOSE_FORBIDDEN = 4403;
/** Client-side: the stream showed a gap, so the client closes and resumes. */
export const CLOSE_GAP = 4000;
/** Client-side: the app asked to drop the connection (tests, the demo's button). */
export const CLOSE_DROPPED = 4002;

/** The server said: do not come back on your own (left, replaced, forbidden, unauthorized). */
export const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  CLOSE_NORMAL,
  CLOSE_REPLACED,
  CLOSE_UNAUTHORIZED,
  CLOSE_FORBIDDEN,
]);

/** Worth retrying later with the same op_id: nothing is known to have happened. */
export const TRANSIENT_ERRORS: ReadonlySet<string> = new Set(["unavailable", "internal", "rate_limited"]);
/** An open or resume refused with one of these is tried again on a new connection. */
export const TRANSIENT_REFUSALS: ReadonlySet<string> = new Set([...TRANSIENT_ERRORS, "draining"]);
