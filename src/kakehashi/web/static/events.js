// The live event stream (/api/v1/events), one client for every page (desk, wallboard, routing).
//
// The server numbers its events; the client remembers the last id it saw and, after a dropped socket, reconnects
// with ?last_event_id= so the server replays what was missed ("resync" when it no longer holds them: the page
// then fetches a fresh snapshot). Reconnects back off exponentially with jitter (so a restarted server is not hit
// by every browser at the same instant) and start again from the initial delay once the server says hello.
// Close codes: 4401 (the session ended) sends to the login, which comes back to this page; 4403 (this role may
// not follow the stream) stops for good — retrying could not help.

import { loginUrl } from "/static/lib.js";

export const CLOSE_LOGGED_OUT = 4401;
export const CLOSE_FORBIDDEN = 4403;

/**
 * Follow the stream. Handlers: ``onEvent(message)`` for each event (``{type: "event", id, name, payload, …}``),
 * ``onResync()`` when the missed events are gone, ``onHello({ resumed })`` once connected (``resumed``: it
 * reconnected after an event id), ``onLive(on)`` when the connection comes and goes. Options: ``initialDelay``
 * and ``maxDelay`` (ms) of the backoff; ``WebSocket``, ``setTimeout``, ``random`` and ``leave`` (go to a URL)
 * can be replaced (tests). Returns ``{ close(), lastEventId, delay }``.
 */
export function connectEvents({
  onEvent = () => {},
  onResync = () => {},
  onHello = () => {},
  onLive = () => {},
  initialDelay = 1000,
  maxDelay = 30000,
  WebSocket: Socket = globalThis.WebSocket,
  setTimeout: later = globalThis.setTimeout.bind(globalThis),
  random = Math.random,
  leave = (url) => location.assign(url),
} = {}) {
  let lastEventId = null;
  let delay = initialDelay;
  let socket = null;
  let stopped = false;

  function retry() {
    if (stopped) return;
    const wait = delay * (0.75 + random() / 2); // ±25 %: browsers that lost the server together spread out
    delay = Math.min(delay * 2, maxDelay);
    later(open, wait);
  }

  function open() {
    if (stopped) return;
    const url = new URL("/api/v1/events", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (lastEventId !== null) url.searchParams.set("last_event_id", String(lastEventId));
    try {
      socket = new Socket(url.href);
    } catch {
      retry();
      return;
    }
    socket.addEventListener("message", (message) => {
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        return;
      }
      if (data.type === "hello") {
        delay = initialDelay;
        onLive(true);
        onHello({ resumed: lastEventId !== null });
      } else if (data.type === "resync") {
        onResync();
      } else if (data.type === "event") {
        if (typeof data.id === "number") lastEventId = data.id;
        onEvent(data);
      }
    });
    socket.addEventListener("close", (closed) => {
      socket = null;
      onLive(false);
      if (closed.code === CLOSE_LOGGED_OUT) {
        stopped = true;
        leave(loginUrl());
      } else if (closed.code === CLOSE_FORBIDDEN) {
        stopped = true; // not for this role: nothing to retry
      } else {
        retry();
      }
    });
  }

  open();
  return {
    close() {
      stopped = true;
      socket?.close();
    },
    get lastEventId() {
      return lastEventId;
    },
    get delay() {
      return delay;
    },
  };
}
