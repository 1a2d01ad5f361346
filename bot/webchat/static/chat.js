// The gridgate web chat: the page residents without Telegram reach from a poster's QR code
// (/chat?at=CODE), one conversation with the bot drawn like a messenger.
//
// It speaks the web chat's HTTP contract (bot/webchat/): POST /chat/api/session gives the words,
// the history and a CSRF token; every action is one POST with a random key, re-sent unchanged
// when it is retried (network error, reload) so the server acts once; the /chat/ws WebSocket,
// or polling while it is down, brings what changes. No framework, no build step, nothing from
// outside the origin (CSP default-src 'self'). The bot's HTML reaches the page only through
// sanitize(), an allow-list of Telegram's tags; everything else is set as text.
"use strict";

(() => {
  const { h } = window.ggDom; // bot/pages/static/dom.js
  const LANG_TAGS = { zh_Hans: "zh-Hans", zh_Hant: "zh-Hant", en: "en" };
  const ALLOWED_TAGS = new Set(["b", "strong", "i", "em", "u", "ins", "s", "strike", "del",
    "code", "pre", "blockquote", "br"]);
  // Elements whose content is not text to show: dropped whole, not unwrapped.
  const DROPPED_TAGS = new Set(["script", "style", "template", "noscript", "iframe", "object",
    "embed", "svg", "math", "title", "head", "textarea", "select", "img", "video", "audio"]);
  const POLL_MS = 5000;
  const MAX_BACKOFF_S = 30;
  const OUTBOX = "gg_chat_outbox"; // actions not yet answered, re-sent with their key on reload
  // Words shown before the session has answered (the server gives all others).
  const FALLBACK = { error: "网络错误 / Network error", reconnecting: "…", sending: "…" };
  const DOC_ICON = "M6 3h8l4 4v14H6zM14 3v4h4M9 13h6M9 17h6";

  const $ = (selector, root = document) => root.querySelector(selector);
  const S = { at: null, csrf: "", language: "zh_Hans", languages: [], strings: {}, place: null,
    cursor: 0 };
  const applied = new Set(); // seqs already applied
  const shown = new Map(); // message id → {seq, message, el}, in the conversation's order
  let ask = { kind: "text", message: null }; // what the bot asks for, and the message asking
  let locationOpen = false; // the two ways to share a location are showing
  // A message of the bot the person chose to answer (as Telegram's swipe to reply): what they
  // write next goes to the staff of the ticket it is about.
  let chosenReply = null;
  let stickToBottom = true; // the person is at the end of the conversation: new messages follow
  let socket = null, socketRetries = 0, reconnectTimer = null, pollTimer = null, live = true;
  let sessionPromise = null;
  let mapData = null, mapView = null, mapZoom = 1, mapPick = null;

  // -- small helpers ------------------------------------------------------------------------------
  function t(key) {
    return S.strings[key] || FALLBACK[key] || "";
  }


  const sleep = (seconds) => new Promise((resolve) => setTimeout(resolve, seconds * 1000));

  function newKey() {
    const bytes = crypto.getRandomValues(new Uint8Array(16));
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  // Only http(s) addresses; a relative one (the server's own files) resolves against the page.
  function safeUrl(url, relative) {
    try {
      const parsed = relative ? new URL(String(url), location.href) : new URL(String(url));
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (_) {
      return null;
    }
  }

  function formatTime(iso) {
    const date = new Date(iso), tag = LANG_TAGS[S.language] || "zh-Hans";
    if (isNaN(date)) return "";
    const time = date.toLocaleTimeString(tag, { hour: "2-digit", minute: "2-digit" });
    if (date.toDateString() === new Date().toDateString()) return time;
    return date.toLocaleDateString(tag, { month: "numeric", day: "numeric" }) + " " + time;
  }

  function setBusy(control, busy) {
    control.disabled = busy;
    control.classList.toggle("busy", busy);
    control.setAttribute("aria-busy", String(busy));
  }

  // -- the bot's HTML -----------------------------------------------------------------------------
  // Telegram's HTML subset, rebuilt element by element in this document from an inert parse:
  // allowed tags without their attributes, http(s) links, spoilers; "\n" becomes <br>.
  function sanitize(html) {
    const parsed = new DOMParser().parseFromString(String(html || ""), "text/html");
    const out = document.createDocumentFragment();
    copyAllowed(parsed.body, out, false);
    return out;
  }

  function copyAllowed(from, to, inPre) {
    for (const node of from.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) appendText(to, node.data, inPre);
      if (node.nodeType !== Node.ELEMENT_NODE) continue;
      const tag = node.localName;
      if (DROPPED_TAGS.has(tag)) continue;
      let el = null;
      if (ALLOWED_TAGS.has(tag)) el = h(tag);
      else if (tag === "a") {
        const href = safeUrl(node.getAttribute("href"), false);
        if (href) el = h("a", { href, target: "_blank", rel: "noopener noreferrer" });
      } else if (tag === "tg-spoiler" || (tag === "span" && node.classList.contains("tg-spoiler"))) {
        el = h("span", { class: "tg-spoiler", tabindex: "0" });
      }
      if (el) {
        copyAllowed(node, el, inPre || tag === "pre");
        to.append(el);
      } else copyAllowed(node, to, inPre); // an unknown tag: its text stays, the tag goes
    }
  }

  function appendText(to, text, inPre) {
    if (inPre) return to.append(text);
    text.split("\n").forEach((part, i) => {
      if (i) to.append(h("br"));
      if (part) to.append(part);
    });
  }

  // -- talking to the server ----------------------------------------------------------------------
  // code: the server's error code, or "network" (no answer: worth retrying as it is).
  const failure = (code, message, retryAfter) => Object.assign(new Error(message), { code, retryAfter });

  async function request(method, path, body) {
    const init = { method, headers: {}, credentials: "same-origin", cache: "no-store" };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
    if (method === "POST" && path !== "/chat/api/session") init.headers["X-CSRF-Token"] = S.csrf;
    const response = await fetch(path, init).catch(() => null);
    if (!response) throw failure("network", t("error"));
    const data = await response.json().catch(() => null); // a proxy's page is not JSON
    if (response.ok && data) return data;
    // A gateway's 5xx or an answer that is not the server's: the server has not answered.
    if (response.ok || response.status >= 500 || !data) throw failure("network", t("error"));
    const retryAfter = parseFloat(response.headers.get("Retry-After"));
    throw failure(data.error || "error", data.message || t("error"), retryAfter > 0 ? retryAfter : null);
  }

  // One user action: the same key on every attempt until the server has answered. Network
  // errors retry with backoff, "rate" after Retry-After, an expired session once after a new one.
  async function act(path, key, fields, file) {
    let delay = 1, renewed = false, rateShown = false;
    for (;;) {
      const body = file ? new FormData() : { key, ...fields };
      if (file) body.append("key", key);
      if (file) body.append("file", file, file.name || "photo.jpg");
      try {
        const data = await request("POST", path + "?after=" + S.cursor, body);
        applyChanges(data);
        return data;
      } catch (error) {
        if ((error.code === "session" || error.code === "csrf") && !renewed) {
          renewed = true;
          await startSession();
          continue;
        }
        if (error.code !== "network" && error.code !== "rate") throw error;
        if (error.code === "rate" && !rateShown) showSystem(error.message);
        rateShown = rateShown || error.code === "rate";
        await sleep(error.retryAfter || delay);
        delay = Math.min(delay * 2, MAX_BACKOFF_S);
      }
    }
  }

  // The actions in flight, kept in sessionStorage (without them, with them: `entries`).
  function outbox(entries) {
    try {
      if (!entries) return JSON.parse(sessionStorage.getItem(OUTBOX) || "[]");
      sessionStorage.setItem(OUTBOX, JSON.stringify(entries));
    } catch (_) { /* private mode: retries still work while the page stays open */ }
    return [];
  }

  // Runs an action with its pending bubble and its busy control; a refusal becomes a system note.
  async function run(path, fields, options = {}) {
    const { control, pending, file, persist } = options;
    const key = options.key || newKey();
    if (persist) outbox(outbox().filter((e) => e.key !== key).concat({ key, path, fields, pending }));
    const bubble = pending ? addPending(key, pending) : null;
    if (control) setBusy(control, true);
    try {
      return await act(path, key, fields, file);
    } catch (error) {
      if (options.onError) options.onError(error);
      else showSystem(error.message || t("error"));
      return null;
    } finally {
      if (persist) outbox(outbox().filter((e) => e.key !== key));
      if (bubble) bubble.remove();
      if (pending && pending.url) URL.revokeObjectURL(pending.url);
      if (control) setBusy(control, false);
    }
  }

  // -- the session --------------------------------------------------------------------------------
  // Creates or resumes the device session; the answer is the whole conversation, drawn afresh.
  function startSession() {
    sessionPromise = sessionPromise || (async () => {
      for (let delay = 1; ; delay = Math.min(delay * 2, MAX_BACKOFF_S)) {
        try {
          return loadSession(await request("POST", "/chat/api/session", { at: S.at, language: null }));
        } catch (error) {
          if (error.code !== "network" && error.code !== "rate") {
            showSystem(error.message);
            throw error;
          }
          showBanner(true);
          await sleep(error.retryAfter || delay);
        }
      }
    })().finally(() => { sessionPromise = null; });
    return sessionPromise;
  }

  function loadSession(data) {
    const renewed = !!S.csrf;
    Object.assign(S, { csrf: data.csrf, language: data.language || S.language,
      languages: data.languages || [], strings: data.strings || {}, place: data.place || null });
    applied.clear();
    shown.clear();
    for (const el of [...$(".messages").children]) if (!el.matches(".pending")) el.remove();
    S.cursor = 0;
    applyChanges({ messages: data.messages || [], cursor: data.cursor }, true);
    S.cursor = data.cursor || 0;
    mapData = null; // grid names are in the session's language
    applyStrings();
    scrollToBottom();
    showBanner(!live);
    if (renewed && socket) { // the socket belongs to the old session: open one for the new
      const old = socket;
      socket = null;
      old.close();
      connect();
    }
  }

  // -- messages -----------------------------------------------------------------------------------
  // The history comes oldest first as it is; changes are applied in the order of their seq.
  function applyChanges(data, history) {
    if (!data) return;
    const stick = stickToBottom;
    const messages = (data.messages || []).filter((m) => m && typeof m.seq === "number");
    if (!history) messages.sort((a, b) => a.seq - b.seq);
    let mine = false;
    for (const message of messages) mine = applyMessage(message, history) || mine;
    if (typeof data.cursor === "number" && data.cursor > S.cursor) S.cursor = data.cursor;
    updateAsk();
    if (stick || mine) scrollToBottom();
  }

  // Draws one message (new, or a newer state of one drawn); true if it is a new one of the
  // person's own.
  function applyMessage(message, history) {
    if (applied.has(message.seq)) return false;
    applied.add(message.seq);
    const known = shown.get(message.id);
    if (known) {
      if (message.seq < known.seq) return false; // an older state than the one drawn
      const el = renderMessage(message);
      known.el.replaceWith(el);
      Object.assign(known, { seq: message.seq, message, el });
      return false;
    }
    const el = renderMessage(message);
    shown.set(message.id, { seq: message.seq, message, el });
    appendStored(el);
    if (message.from !== "me" || history) return false;
    const oldest = $(".messages .pending:not(.retired)");
    if (oldest) oldest.classList.add("retired"); // its stored copy has come (the push was first)
    return true;
  }

  // After the last stored bubble: the person's messages still being sent stay at the end.
  function appendStored(el) {
    const list = $(".messages");
    list.insertBefore(el, $(".pending", list));
  }

  function renderMessage(message) {
    const from = message.from === "me" ? "me" : "bot";
    const bubble = h("div", { class: "bubble" });
    const photos = (message.photos || []).map((url) => safeUrl(url, true)).filter(Boolean);
    if (photos.length) {
      bubble.classList.add("has-media");
      bubble.append(h("div", { class: "photos", "data-count": photos.length }, photos.map((src) =>
        h("a", { href: src, target: "_blank", rel: "noopener" },
          h("img", { src, alt: "", loading: "lazy", decoding: "async", onload: keepAtBottom })))));
    }
    const doc = message.document, docUrl = doc && safeUrl(doc.url, true);
    if (docUrl) {
      bubble.append(h("a", { class: "document", href: docUrl, target: "_blank", rel: "noopener" },
        h("span", { class: "doc-icon" }, h("svg:svg", { class: "icon", viewBox: "0 0 24 24",
          "aria-hidden": "true" }, h("svg:path", { d: DOC_ICON }))),
        h("span", { class: "doc-name", text: doc.name || "" })));
    }
    if (message.html) bubble.append(h("div", { class: "text" }, sanitize(message.html)));
    const replyable = from === "bot" && Boolean(message.html) && !(message.buttons || []).length;
    bubble.append(h("span", { class: "meta" },
      replyable && h("button", { type: "button", class: "reply-button", "data-testid": "reply",
        "aria-label": t("reply"), title: t("reply"), text: "↩",
        onclick: () => chooseReply(message) }),
      h("time", { datetime: message.at || "", text: message.at ? formatTime(message.at) : "" })));
    return h("div", { class: "message from-" + from, "data-testid": "bubble", "data-from": from,
      "data-id": message.id }, bubble, renderButtons(message));
  }

  function renderButtons(message) {
    const rows = (message.buttons || []).filter((row) => Array.isArray(row) && row.length);
    if (!rows.length) return null;
    return h("div", { class: "keyboard" }, rows.map((row) => h("div", { class: "keyboard-row" },
      row.map((button) => {
        if (button.url) { // a link, not an action
          const href = safeUrl(button.url, false);
          return href && h("a", { class: "inline-button link", "data-testid": "button", href,
            target: "_blank", rel: "noopener noreferrer", text: button.label });
        }
        return h("button", { type: "button", class: "inline-button", "data-testid": "button",
          "data-data": button.data, text: button.label,
          onclick: (event) => press(message.id, button.data, event.currentTarget) });
      }))));
  }

  function addPending(key, pending) {
    const content = pending.url ? h("img", { src: pending.url, alt: "" })
      : h("div", { class: "text", text: pending.text || "" });
    const el = h("div", { class: "message from-me pending", "data-testid": "pending",
      "data-key": key }, h("div", { class: "bubble" + (pending.url ? " has-media" : "") }, content,
      h("span", { class: "meta" }, h("span", { class: "status", text: t("sending") }))));
    $(".messages").append(el);
    scrollToBottom();
    return el;
  }

  // A note from the page itself (a refusal, a denied location), in the conversation.
  function showSystem(text) {
    if (!text) return;
    appendStored(h("div", { class: "system", "data-testid": "system", role: "status" },
      h("span", { text })));
    scrollToBottom();
  }

  // At once, not smoothly: a smooth scroll's own scroll events would read as the person
  // scrolling away, and the next message would no longer follow.
  function scrollToBottom() {
    const log = $(".log");
    log.scrollTop = log.scrollHeight;
    stickToBottom = true;
  }

  function keepAtBottom() {
    if (stickToBottom) scrollToBottom();
  }

  // -- the input: what the bot asks for -----------------------------------------------------------
  // The last bot message that asks for something sets the input; "nothing" leaves it as it was.
  function updateAsk() {
    const bots = [...shown.values()].filter((s) => s.message.from !== "me").reverse();
    const asking = bots.find((s) => s.message.ask && s.message.ask !== "nothing");
    const message = asking ? asking.message : null;
    const kind = message ? message.ask : "text";
    // A new question opens the location choices, or closes them; an edit leaves them as they are.
    if (kind !== ask.kind || (message && message.id) !== (ask.message && ask.message.id)) {
      locationOpen = kind === "location";
    }
    ask = { kind, message };
    renderComposer();
  }

  function renderComposer() {
    const label = (ask.message && ask.message.ask_label) || "";
    const texting = ask.kind === "text" || ask.kind === "reply";
    $(".composer").dataset.ask = ask.kind;
    $(".share-label").textContent = (ask.kind === "location" && label) || t("share_location");
    $(".photo-label").textContent = (ask.kind === "photos" && label) || t("photo");
    $(".message-box").placeholder = (texting && label) || t("placeholder");
    $(".ask-panel").hidden = !locationOpen && ask.kind !== "photos";
    $(".ask-panel").dataset.show = locationOpen ? "location" : "photos";
    $(".location-button").setAttribute("aria-expanded", String(locationOpen));
    $(".text-row").hidden = ask.kind === "contact";
    $(".phone-row").hidden = ask.kind !== "contact";
    const replying = replyTarget();
    $(".reply-chip").hidden = !replying;
    $(".reply-cancel").hidden = !chosenReply;
    if (replying) {
      const text = replying.html ? sanitize(replying.html).textContent : "";
      $(".reply-snippet").textContent = text.length > 80 ? text.slice(0, 80) + "…" : text;
    }
  }

  function replyTarget() {
    return chosenReply || (ask.kind === "reply" && ask.message) || null;
  }

  function chooseReply(message) {
    chosenReply = message;
    renderComposer();
    $(".message-box").focus();
  }

  function growTextBox() {
    const box = $(".message-box");
    box.style.height = "auto"; // CSSOM, which the CSP allows (a style attribute it would not)
    box.style.height = Math.min(box.scrollHeight, 144) + "px";
  }

  // -- the person's actions -----------------------------------------------------------------------
  function sendText(event) {
    event.preventDefault();
    const box = $(".message-box"), button = $(".send-button"), text = box.value.trim();
    if (!text || button.disabled) return;
    box.value = "";
    growTextBox();
    const target = replyTarget(), replyTo = target ? target.id : null;
    chosenReply = null;
    renderComposer();
    run("/chat/api/send", { text, reply_to: replyTo }, {
      control: button, pending: { text }, persist: true,
      onError: (error) => {
        showSystem(error.message);
        if (!box.value) box.value = text; // what was typed is not lost
        growTextBox();
      },
    });
  }

  async function sendPhone(event) {
    event.preventDefault();
    const field = $(".phone"), button = $('[data-testid="phone-send"]'), phone = field.value.trim();
    if (!phone || button.disabled) return;
    const pending = { text: phone };
    if (await run("/chat/api/contact", { phone }, { control: button, pending, persist: true })) {
      field.value = "";
    }
  }

  function press(messageId, data, button) {
    if (button.disabled) return; // a double tap sends once
    run("/chat/api/press", { message: messageId, data }, { control: button, persist: true });
  }

  function sendLocation(latitude, longitude) {
    locationOpen = false;
    renderComposer();
    const text = "📍 " + latitude.toFixed(5) + ", " + longitude.toFixed(5);
    run("/chat/api/location", { latitude, longitude }, { pending: { text }, persist: true });
  }

  function shareMyLocation(button) {
    if (!navigator.geolocation) return showSystem(t("geolocation_denied"));
    setBusy(button, true);
    navigator.geolocation.getCurrentPosition((position) => {
      setBusy(button, false);
      sendLocation(position.coords.latitude, position.coords.longitude);
    }, () => {
      setBusy(button, false);
      showSystem(t("geolocation_denied"));
    }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 });
  }

  async function sendPhotos(input) {
    const files = [...input.files], buttons = document.querySelectorAll('[data-action="photo"]');
    input.value = "";
    buttons.forEach((b) => setBusy(b, true));
    for (const file of files) { // one photo a request, in the order chosen
      await run("/chat/api/photo", {}, { file, pending: { url: URL.createObjectURL(file) } });
    }
    buttons.forEach((b) => setBusy(b, false));
  }

  async function changeLanguage(select) {
    const language = select.value;
    if (language === S.language) return;
    const data = await run("/chat/api/language", { language }, { control: select });
    if (!data || !data.strings) {
      select.value = S.language;
      return;
    }
    Object.assign(S, { strings: data.strings, language: data.language || language });
    mapData = null;
    applyStrings();
  }

  async function recover(event) {
    event.preventDefault();
    const dialog = $(".recover-dialog"), field = $(".recover-code"), problem = $(".dialog-error");
    const button = $('[data-testid="recover-send"]'), code = field.value.trim();
    if (!code || button.disabled) return;
    problem.hidden = true;
    const data = await run("/chat/api/recover", { code }, {
      control: button,
      onError: (error) => {
        problem.textContent = error.message || t("error");
        problem.hidden = false;
      },
    });
    if (!data) return;
    field.value = "";
    dialog.close();
    await startSession(); // the conversation is now the recovered one: draw it whole
  }

  // -- the map ------------------------------------------------------------------------------------
  // An equirectangular projection of the bbox, scaled by cos(middle latitude); exactly
  // invertible, so a tap gives back the point under it.
  function projection(bbox) {
    let [minLon, minLat, maxLon, maxLat] = bbox;
    if (![minLon, minLat, maxLon, maxLat].every(isFinite) || maxLon <= minLon || maxLat <= minLat) {
      [minLon, minLat, maxLon, maxLat] = [0, 0, 1, 1];
    }
    const cos = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
    const width = 1000, pad = 20, k = width / ((maxLon - minLon) * cos);
    return {
      width: width + 2 * pad, height: (maxLat - minLat) * k + 2 * pad,
      project: (lon, lat) => [pad + (lon - minLon) * cos * k, pad + (maxLat - lat) * k],
      unproject: (x, y) => [minLon + (x - pad) / (cos * k), maxLat - (y - pad) / k],
    };
  }

  function insideRings(rings, lon, lat) {
    let inside = false; // even-odd over all rings: holes take their area out
    for (const ring of rings || []) {
      for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
        const [xi, yi] = ring[i], [xj, yj] = ring[j];
        if ((yi > lat) !== (yj > lat) && lon < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) inside = !inside;
      }
    }
    return inside;
  }

  // A grid's name on one or two lines: a Chinese name splits in the middle, others between words.
  function labelLines(name) {
    if (name.length <= 8) return [name];
    const space = name.lastIndexOf(" ", Math.ceil(name.length / 2) + 4);
    const cut = space > 0 ? space : Math.ceil(name.length / 2);
    return [name.slice(0, cut), name.slice(space > 0 ? cut + 1 : cut)];
  }

  function drawMap() {
    const svg = $(".map"), grids = mapData.grids || [];
    const proj = projection(mapData.bbox || []);
    svg.setAttribute("viewBox", `0 0 ${proj.width.toFixed(1)} ${proj.height.toFixed(1)}`);
    const areas = h("svg:g", { class: "areas" }), labels = h("svg:g", { class: "labels" });
    const drawn = grids.map((grid) => {
      const points = (grid.rings || []).map((ring) => ring.map(([lon, lat]) => proj.project(lon, lat)));
      const d = points.map((ring) => ring.map(([x, y], i) => (i ? "L" : "M") + x.toFixed(1) +
        " " + y.toFixed(1)).join("") + "Z").join("");
      const area = h("svg:path", { class: "area", d, "data-code": grid.code },
        h("svg:title", { text: grid.name || grid.code }));
      const xs = (points[0] || [[0, 0]]).map((p) => p[0]), ys = (points[0] || [[0, 0]]).map((p) => p[1]);
      const box = { x0: Math.min(...xs), x1: Math.max(...xs), y0: Math.min(...ys), y1: Math.max(...ys) };
      const cx = ((box.x0 + box.x1) / 2).toFixed(1), cy = ((box.y0 + box.y1) / 2).toFixed(1);
      const lines = labelLines(grid.name || grid.code || "");
      const label = h("svg:text", { class: "label", x: cx, y: cy }, lines.map((line, i) =>
        h("svg:tspan", { x: cx, text: line, dy: i ? "1.2em" : (0.35 - (lines.length - 1) * 0.6) + "em" })));
      areas.append(area);
      labels.append(label);
      return { grid, box, area, label };
    });
    const pin = h("svg:g", { class: "pin", visibility: "hidden" },
      h("svg:path", { d: "M0 0c-2-6-9-10-9-17a9 9 0 0 1 18 0c0 7-7 11-9 17z" }),
      h("svg:circle", { cx: 0, cy: -17, r: 3.2 }));
    svg.replaceChildren(areas, labels, pin);
    mapView = { proj, drawn, pin };
  }

  // Sizes in screen pixels whatever the zoom (the labels' font, the pin); a label that does not
  // fit inside its grid is hidden.
  function layoutMap() {
    const svg = $(".map"), rect = svg.getBoundingClientRect();
    if (!mapView || !rect.width) return;
    const unit = Math.max(mapView.proj.width / rect.width, mapView.proj.height / rect.height);
    svg.setAttribute("font-size", (13 * unit).toFixed(2));
    for (const { box, label } of mapView.drawn) {
      const size = label.getBBox();
      const fits = size.width <= (box.x1 - box.x0) * 0.94 && size.height <= (box.y1 - box.y0) * 0.94;
      label.setAttribute("visibility", fits ? "visible" : "hidden");
    }
    if (!mapPick) return;
    const [x, y, s] = [mapPick.x.toFixed(1), mapPick.y.toFixed(1), (1.6 * unit).toFixed(3)];
    mapView.pin.setAttribute("transform", `translate(${x} ${y}) scale(${s})`);
    mapView.pin.setAttribute("visibility", "visible");
  }

  async function openMap(button) {
    if (!mapData) {
      setBusy(button, true);
      try {
        mapData = await request("GET", "/chat/api/map");
      } catch (error) {
        return showSystem(error.message);
      } finally {
        setBusy(button, false);
      }
    }
    drawMap();
    [mapPick, mapZoom] = [null, 1];
    $(".map").style.width = $(".map").style.height = "";
    $(".map-confirm").hidden = true;
    $(".map-dialog").showModal();
    layoutMap();
  }

  function tapMap(event) {
    const matrix = $(".map").getScreenCTM();
    if (!mapView || !matrix) return;
    const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
    const [lon, lat] = mapView.proj.unproject(point.x, point.y);
    mapPick = { x: point.x, y: point.y, latitude: +lat.toFixed(6), longitude: +lon.toFixed(6) };
    layoutMap();
    const hit = mapView.drawn.find((d) => insideRings(d.grid.rings, lon, lat));
    mapView.drawn.forEach((d) => d.area.classList.toggle("picked", d === hit));
    $(".map-where").textContent = hit ? hit.grid.name : lat.toFixed(5) + ", " + lon.toFixed(5);
    $(".map-confirm").hidden = false;
  }

  function zoomMap(factor) {
    const box = $(".map-scroll"), svg = $(".map");
    const cx = (box.scrollLeft + box.clientWidth / 2) / box.scrollWidth;
    const cy = (box.scrollTop + box.clientHeight / 2) / box.scrollHeight;
    mapZoom = Math.min(6, Math.max(1, mapZoom * factor));
    svg.style.width = svg.style.height = mapZoom * 100 + "%";
    box.scrollLeft = cx * box.scrollWidth - box.clientWidth / 2; // the middle stays the middle
    box.scrollTop = cy * box.scrollHeight - box.clientHeight / 2;
    layoutMap();
  }

  function confirmMap() {
    const pick = mapPick;
    $(".map-dialog").close();
    if (pick) sendLocation(pick.latitude, pick.longitude);
  }

  // -- live updates -------------------------------------------------------------------------------
  function connect() {
    clearTimeout(reconnectTimer);
    if (socket) return;
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(scheme + "//" + location.host + "/chat/ws");
    socket = ws;
    ws.addEventListener("open", () => {
      socketRetries = 0;
      ws.send(JSON.stringify({ after: S.cursor }));
      setLive(true);
    });
    ws.addEventListener("message", (event) => {
      try {
        applyChanges(JSON.parse(event.data));
      } catch (_) { /* a frame that is not ours: the next push or poll catches up */ }
    });
    ws.addEventListener("close", () => {
      if (socket !== ws) return;
      socket = null;
      setLive(false);
      const wait = Math.min(2 ** socketRetries, MAX_BACKOFF_S); // 1, 2, 4 … 30 s
      socketRetries += 1;
      reconnectTimer = setTimeout(connect, wait * 1000);
    });
  }

  // While the socket is down: the banner, and a poll every five seconds.
  function setLive(up) {
    if (up === live) return;
    live = up;
    showBanner(!up);
    clearTimeout(pollTimer);
    if (!up) pollTimer = setTimeout(poll, POLL_MS);
  }

  function showBanner(visible) {
    const banner = $(".banner");
    banner.textContent = navigator.onLine === false ? t("offline") : t("reconnecting");
    banner.hidden = !visible;
  }

  async function poll() {
    let wait = POLL_MS / 1000;
    try {
      applyChanges(await request("GET", "/chat/api/messages?after=" + S.cursor));
    } catch (error) {
      if (error.code === "session") await startSession().catch(() => null);
      if (error.retryAfter) wait = Math.max(wait, error.retryAfter);
    }
    if (!live) pollTimer = setTimeout(poll, wait * 1000);
  }

  // Back on the page (a phone wakes, the network returns): reconnect now, not at the backoff's end.
  function wakeUp() {
    if (document.visibilityState !== "visible" || socket) return;
    socketRetries = 0;
    connect();
  }

  // -- the page's words and controls --------------------------------------------------------------
  function applyStrings() {
    document.documentElement.lang = LANG_TAGS[S.language] || "zh-Hans";
    document.title = t("title") || "gridgate";
    for (const el of document.querySelectorAll("[data-s]")) el.textContent = t(el.dataset.s);
    for (const el of document.querySelectorAll("[data-s-label]")) {
      el.setAttribute("aria-label", t(el.dataset.sLabel));
      if (el.localName === "button") el.title = t(el.dataset.sLabel);
    }
    for (const el of document.querySelectorAll("[data-s-placeholder]")) {
      el.placeholder = t(el.dataset.sPlaceholder);
    }
    const place = $(".place"), select = $(".language");
    place.textContent = S.place ? S.place.name : "";
    place.hidden = !S.place;
    select.replaceChildren(...S.languages.map((l) => h("option", { value: l.code, text: l.name })));
    select.value = S.language;
    select.hidden = S.languages.length < 2;
    if (!live) showBanner(true);
    renderComposer();
  }

  function toggleMenu(open) {
    const button = $(".menu-button");
    const show = open === undefined ? button.getAttribute("aria-expanded") !== "true" : open;
    button.setAttribute("aria-expanded", String(show));
    $(".menu-list").hidden = !show;
  }

  // One listener for every [data-action] button, so the HTML stays free of handlers.
  function onAction(event) {
    const button = event.target.closest("[data-action]");
    if (!button || button.disabled) return;
    const action = button.dataset.action;
    if (action === "photo") $(".photo-input").click();
    else if (action === "location") {
      locationOpen = !locationOpen;
      renderComposer();
    } else if (action === "share-location") shareMyLocation(button);
    else if (action === "pick-on-map") openMap(button);
    else if (action === "close-map") $(".map-dialog").close();
    else if (action === "confirm-map") confirmMap();
    else if (action === "zoom-in") zoomMap(1.5);
    else if (action === "zoom-out") zoomMap(1 / 1.5);
    else if (action === "menu") toggleMenu();
    else if (action === "cancel-reply") {
      chosenReply = null;
      renderComposer();
    }
    else if (action === "recover") {
      toggleMenu(false);
      $(".dialog-error").hidden = true;
      $(".recover-dialog").showModal();
    } else if (action === "close-recover") $(".recover-dialog").close();
  }

  function wire() {
    document.addEventListener("click", (event) => {
      if (!event.target.closest(".menu")) toggleMenu(false);
      const spoiler = event.target.closest(".tg-spoiler");
      if (spoiler) spoiler.classList.add("revealed");
      onAction(event);
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape") toggleMenu(false);
      const spoiler = event.target.closest && event.target.closest(".tg-spoiler");
      if (spoiler && (event.key === "Enter" || event.key === " ")) spoiler.classList.add("revealed");
    });
    $(".text-row").addEventListener("submit", sendText);
    $(".phone-row").addEventListener("submit", sendPhone);
    $(".recover-form").addEventListener("submit", recover);
    $(".language").addEventListener("change", (event) => changeLanguage(event.target));
    $(".photo-input").addEventListener("change", (event) => sendPhotos(event.target));
    $(".map").addEventListener("click", tapMap);
    const box = $(".message-box"), log = $(".log");
    box.addEventListener("input", growTextBox);
    box.addEventListener("keydown", (event) => {
      // Enter sends, Shift+Enter starts a new line; an IME's Enter (Chinese input) picks a word.
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        $(".text-row").requestSubmit();
      }
    });
    log.addEventListener("scroll", () => {
      stickToBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 80;
    }, { passive: true });
    new ResizeObserver(keepAtBottom).observe(log); // the phone's keyboard opening
    window.addEventListener("resize", () => { if ($(".map-dialog").open) layoutMap(); });
    document.addEventListener("visibilitychange", wakeUp);
    window.addEventListener("online", wakeUp);
    window.addEventListener("offline", () => { if (!live) showBanner(true); });
  }

  async function start() {
    wire();
    S.at = new URLSearchParams(location.search).get("at") || null;
    try {
      await startSession();
    } catch (_) {
      return; // refused (shown as a note): nothing works without a session
    }
    // Actions a reload interrupted: the same key again, so the server does each once.
    for (const entry of outbox()) {
      run(entry.path, entry.fields, { key: entry.key, pending: entry.pending, persist: true });
    }
    connect();
  }

  start();
})();
