// The browser softphone: the agent's browser is their phone (docs/telephony.md "Browser softphone", ADR 0015).
//
// A thin wrapper of JsSIP (bundled in /static/vendor, no CDN): SIP over WebSocket to Kamailio with short-lived
// credentials the app issues (GET /api/v1/softphone), WebRTC audio that rtpengine bridges to the call center's
// plain RTP. It has no UI of its own; a page drives it and listens to its events:
//
//   const phone = await Softphone.fromServer();          // null: no softphone configured (simulator)
//   phone.addEventListener("incoming", (e) => show(e.detail.number, e.detail.name));
//   phone.addEventListener("ended", () => …);
//   phone.start();                                        // connects and registers
//   phone.answer(); phone.mute(true); phone.sendDTMF("1"); phone.hangup();
//   await phone.stop();                                   // on logout: unregisters and disconnects
//
// Events (CustomEvent, details in brackets):
//   registered {expiresAt}  the registrar accepted us (re-registrations are silent while they succeed)
//   renewed {expiresAt}     a new credential from the app is in use (from the next REGISTER on)
//   unregistered {}         no longer registered (stop(), or the connection was lost)
//   failed {cause, code}    registration refused (wrong or expired credential…) or credentials not renewable
//   incoming {number, name} a call rings (one at a time: a second one is answered busy)
//   connected {}            the call is up (answered and confirmed)
//   ended {cause, originator} the call ended, or failed before it was up
//
// Credentials expire (softphone_credential_ttl_s, 1 h by default): before each re-registration the phone
// fetches a new one when the current one would not last until the re-registration after it.
import JsSIP from "/static/vendor/jssip.mjs";

const API = "/api/v1/softphone";
const MAX_REGISTER_EXPIRES = 600; // seconds; re-registration also renews credentials, so keep it well under their TTL
const MIN_REGISTER_EXPIRES = 60;
const RENEW_SLACK = 30; // seconds a credential must still have left after the next re-registration

/** GET /api/v1/softphone with the page's session cookie: the JSON, or null when no softphone is configured. */
export async function fetchSoftphoneConfig() {
  const response = await fetch(API, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`${API}: HTTP ${response.status}`);
  return response.json();
}

export class Softphone extends EventTarget {
  /** A phone for the signed-in agent, renewing its credentials from the server; null when none is configured. */
  static async fromServer(options = {}) {
    const config = await fetchSoftphoneConfig();
    return config ? new Softphone(config, { renew: fetchSoftphoneConfig, ...options }) : null;
  }

  /**
   * @param config  the answer of GET /api/v1/softphone
   * @param options audio: an <audio> element for the caller's voice (one is made otherwise);
   *                audioConstraints: getUserMedia audio constraints (default true: the browser's echo
   *                cancellation and noise suppression); renew: async () => a fresh config (none: no renewal);
   *                registerExpires: seconds a registration lasts (default: half the credential's life, 60–600)
   */
  constructor(config, { audio = null, audioConstraints = true, renew = null, registerExpires = null } = {}) {
    super();
    this.config = config;
    this.audio = audio || Object.assign(document.createElement("audio"), { autoplay: true });
    this.audioConstraints = audioConstraints;
    this.session = null;
    this._renew = renew;
    this._expires =
      registerExpires ??
      Math.max(MIN_REGISTER_EXPIRES, Math.min(MAX_REGISTER_EXPIRES, Math.floor(this._secondsLeft() / 2)));
    this.ua = new JsSIP.UA({
      sockets: [new JsSIP.WebSocketInterface(config.ws_url)],
      uri: config.uri,
      authorization_user: config.authorization_user,
      password: config.password,
      display_name: config.display_name,
      register: true,
      register_expires: this._expires,
      user_agent: `Kakehashi softphone (JsSIP ${JsSIP.version})`,
    });
    this.ua.on("registered", () => this._emit("registered", { expiresAt: this.config.expires_at }));
    this.ua.on("unregistered", () => this._emit("unregistered"));
    this.ua.on("registrationFailed", (e) => {
      this._emit("failed", { cause: e.cause, code: e.response?.status_code ?? null });
    });
    // Listening to this event makes JsSIP leave the re-registration to us: renew the credential first.
    this.ua.on("registrationExpiring", () => this._reregister());
    this.ua.on("newRTCSession", (e) => this._newSession(e.session, e.originator));
  }

  /** Connect to Kamailio and register. */
  start() {
    this.ua.start();
  }

  /** Hang up, unregister and disconnect; resolves once disconnected (or after 5 s). */
  stop() {
    this.hangup();
    if (!this.ua.isConnected()) {
      this.ua.stop();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, 5000);
      this.ua.once("disconnected", () => {
        clearTimeout(timer);
        resolve();
      });
      this.ua.stop();
    });
  }

  get registered() {
    return this.ua.isRegistered();
  }

  /** Whether we put the call on hold. */
  get onHold() {
    return Boolean(this.session?.isOnHold().local);
  }

  /** The call's RTCPeerConnection (for getStats()), or null. */
  get peerConnection() {
    return this.session?.connection ?? null;
  }

  /** Answer the ringing call with the microphone. */
  answer() {
    if (!this.session || this.session.isEstablished()) return;
    this.session.answer({
      mediaConstraints: { audio: this.audioConstraints, video: false },
      pcConfig: { iceServers: this.config.ice_servers || [], rtcpMuxPolicy: "require" },
    });
  }

  /** Hang up the call (or refuse it while it rings). */
  hangup() {
    if (this.session && !this.session.isEnded()) this.session.terminate();
  }

  /**
   * Put the call on hold (re-INVITE, a=sendonly) or take it back. Resolves true once the other side agreed,
   * false when it cannot be done now (no call, already so, another re-INVITE under way) or the call ended.
   */
  hold(on) {
    const session = this.session;
    if (!session?.isEstablished()) return Promise.resolve(false);
    return new Promise((resolve) => {
      const started = on ? session.hold({}, () => resolve(true)) : session.unhold({}, () => resolve(true));
      if (started) session.once("ended", () => resolve(false));
      else resolve(false);
    });
  }

  /** Stop or restart sending the microphone. */
  mute(on) {
    if (!this.session?.isEstablished()) return;
    if (on) this.session.mute({ audio: true });
    else this.session.unmute({ audio: true });
  }

  /** Send keys as RFC 4733 telephone-events (what the call center's IVR hears). */
  sendDTMF(digits) {
    if (this.session?.isEstablished()) this.session.sendDTMF(String(digits), { transportType: "RFC2833" });
  }

  _newSession(session, originator) {
    if (this.session && !this.session.isEnded()) {
      if (originator === "remote") session.terminate({ status_code: 486, reason_phrase: "Busy Here" });
      return;
    }
    this.session = session;
    session.on("peerconnection", ({ peerconnection }) => {
      peerconnection.addEventListener("track", (e) => {
        if (e.track.kind === "audio") this.audio.srcObject = e.streams[0] || new MediaStream([e.track]);
      });
    });
    session.on("confirmed", () => this._emit("connected"));
    const ended = (e) => {
      if (this.session === session) this.session = null;
      this.audio.srcObject = null;
      this._emit("ended", { cause: e.cause, originator: e.originator });
    };
    session.on("ended", ended);
    session.on("failed", ended);
    if (originator === "remote") {
      const identity = session.remote_identity;
      this._emit("incoming", { number: identity.uri.user, name: identity.display_name || "" });
    }
  }

  async _reregister() {
    // The next re-registration comes within this registration's life: the credential must last until then.
    if (this._renew && this._secondsLeft() < this._expires + RENEW_SLACK) {
      try {
        const fresh = await this._renew();
        if (!fresh) {
          this._emit("failed", { cause: "softphone no longer configured", code: null });
          this.ua.stop();
          return;
        }
        this.config = fresh;
        this.ua.set("authorization_user", fresh.authorization_user);
        this.ua.set("password", fresh.password);
        this._emit("renewed", { expiresAt: fresh.expires_at });
      } catch (error) {
        this._emit("failed", { cause: `credential renewal failed: ${error.message}`, code: null });
      }
    }
    this.ua.register();
  }

  _secondsLeft() {
    return (Date.parse(this.config.expires_at) - Date.now()) / 1000;
  }

  _emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}
