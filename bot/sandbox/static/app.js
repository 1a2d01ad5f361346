// The gridgate sandbox page: the chats of the demo's people with the bot, side by side.
//
// Everything comes from the page API (bot/sandbox/page.py): GET /sandbox/state draws the page,
// the /sandbox/events WebSocket keeps it live, and each action is one POST. No build step and
// no outside resources. Text from people and the bot only ever reaches the page as text nodes
// (textContent / append of strings), never as HTML.
"use strict";

(() => {
  const SVG_NS = "http://www.w3.org/2000/svg";
  const LANG_TAGS = { zh_Hans: "zh-Hans", zh_Hant: "zh-Hant", en: "en" };
  const MAP_NAME = { zh_Hans: "name", zh_Hant: "name_zh_hant", en: "name_en" };
  const BLOCKS = new Set(["pre", "blockquote", "expandable_blockquote"]);
  const TYPING_MS = 5000; // Telegram shows a chat action for about five seconds
  const PRESS_MS = 4000; // how long a pressed inline button waits for the bot's answer
  const SAFE_PROTOCOLS = new Set(["http:", "https:", "tg:"]);
  const UNSUPPORTED_KINDS = [
    "sticker", "animation", "audio", "voice", "video", "video_note", "poll", "dice", "game",
    "invoice", "story", "paid_media", "new_chat_members", "left_chat_member", "new_chat_title",
    "new_chat_photo", "pinned_message", "forum_topic_created", "checklist", "giveaway",
  ];
  // Line drawings, 24×24, stroked: the page's only pictures, so no icon font is needed.
  const ICONS = {
    camera: "M4 8h3l2-3h6l2 3h3v11H4zM15.5 13a3.5 3.5 0 1 1-7 0a3.5 3.5 0 1 1 7 0",
    clip: "M20 11.5l-8.5 8.5a5 5 0 0 1-7-7l9-9a3.3 3.3 0 0 1 4.7 4.7l-9 9a1.7 1.7 0 0 1-2.4-2.4l8.3-8.3",
    pin: "M12 21s-7-6.5-7-12a7 7 0 0 1 14 0c0 5.5-7 12-7 12zM14.5 9a2.5 2.5 0 1 1-5 0a2.5 2.5 0 1 1 5 0",
    send: "M3 11.5L21 3l-8.5 18-2.5-7.5zM10 13.5L21 3",
    slash: "M4 4h16v16H4zM14 8l-4 8",
    reply: "M10 8L5 12l5 4M5 12h9a5 5 0 0 1 5 5v1",
    edit: "M4 20h4L19 9l-4-4L4 16zM13.5 6.5l4 4",
    close: "M6 6l12 12M18 6L6 18",
    warning: "M12 3l10 18H2zM12 10v5M12 18v.5",
    restart: "M20 12a8 8 0 1 1-2.3-5.7M20 4v5h-5",
    block: "M19 12a7 7 0 1 1-14 0a7 7 0 1 1 14 0M7 17L17 7",
    doc: "M6 3h8l4 4v14H6zM14 3v4h4M9 13h6M9 17h6",
    person: "M16 8a4 4 0 1 1-8 0a4 4 0 1 1 8 0M4 21c0-4 4-6 8-6s8 2 8 6",
    insert: "M4 12h12M12 8l4 4-4 4M20 5v14",
  };

  let S = null; // the state as last fetched
  const panes = new Map(); // chat id (string) → Pane
  let queued = null; // events that arrive while the state is being fetched
  let socket = null;
  let retries = 0;
  let loading = null;
  let locationTarget = null; // {pane, fromKeyboard} while the location dialog is open

  // -- small helpers ----------------------------------------------------------------------------
  function t(key, values) {
    let text = (S && S.texts && S.texts[key]) || key;
    if (values) {
      text = text.replace(/\{(\w+)\}/g, (all, name) => (name in values ? String(values[name]) : all));
    }
    return text;
  }

  function h(tag, attrs, ...children) {
    const svg = tag.startsWith("svg:");
    const el = svg ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") el.textContent = value;
      else if (key.startsWith("on") && typeof value === "function") {
        el.addEventListener(key.slice(2), value);
      } else if (key === "hidden" || key === "disabled" || key === "multiple") el[key] = !!value;
      else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) el.append(child);
    }
    return el;
  }

  function icon(name) {
    return h("svg:svg", { class: "icon", viewBox: "0 0 24 24", "aria-hidden": "true" },
      h("svg:path", { d: ICONS[name] }));
  }

  function safeUrl(url) {
    try {
      const parsed = new URL(String(url));
      return SAFE_PROTOCOLS.has(parsed.protocol) ? parsed.href : null;
    } catch (_) {
      return null;
    }
  }

  function fileUrl(fileId) {
    return "/sandbox/files/" + encodeURIComponent(fileId);
  }

  function formatSize(bytes) {
    if (!bytes && bytes !== 0) return "";
    if (bytes < 1024) return bytes + " B";
    if (bytes < 1024 * 1024) return (bytes / 1024).toFixed(bytes < 10240 ? 1 : 0) + " KB";
    return (bytes / 1024 / 1024).toFixed(1) + " MB";
  }

  function formatTime(seconds) {
    const tag = LANG_TAGS[S.language] || "en";
    try {
      return new Date(seconds * 1000).toLocaleTimeString(tag, { hour: "2-digit", minute: "2-digit" });
    } catch (_) {
      return "";
    }
  }

  async function api(path, body, form) {
    const init = { method: body === undefined && !form ? "GET" : "POST" };
    if (form) init.body = form;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      init.headers = { "Content-Type": "application/json" };
    }
    let response;
    try {
      response = await fetch(path, init);
    } catch (_) {
      throw new Error(t("no_answer"));
    }
    let data = null;
    try {
      data = await response.json();
    } catch (_) {
      data = null;
    }
    if (!response.ok) throw new Error((data && data.error) || t("no_answer"));
    return data;
  }

  function person(userId) {
    return (S.people || []).find((p) => p.id === userId) || null;
  }

  function isBot(user) {
    return !!user && (user.is_bot || (S.bot && user.id === S.bot.id));
  }

  function senderName(message) {
    if (message.from) {
      const known = person(message.from.id);
      if (known) return known.name;
      return [message.from.first_name, message.from.last_name].filter(Boolean).join(" ");
    }
    if (message.sender_chat) return message.sender_chat.title || t("anonymous");
    return t("anonymous");
  }

  function mapName(feature) {
    const props = feature.properties || {};
    return props[MAP_NAME[S.language]] || props.name || props.code || "";
  }

  // -- message text with its entities --------------------------------------------------------------
  // Entities use UTF-16 offsets, as JavaScript strings do. They nest; one that overlaps the end
  // of another is split there, as Telegram's own clients do.
  function richText(text, entities, pane) {
    const list = (entities || [])
      .filter((e) => e && e.length > 0 && e.offset >= 0 && e.offset < text.length)
      .map((e) => ({ ...e, end: Math.min(text.length, e.offset + e.length) }))
      .sort((a, b) => a.offset - b.offset || b.end - a.end);
    const fragment = document.createDocumentFragment();
    fill(fragment, text, 0, text.length, list, pane);
    return fragment;
  }

  function fill(parent, text, start, end, list, pane) {
    let position = start;
    const todo = list.slice();
    while (todo.length) {
      const entity = todo.shift();
      if (entity.offset < position) continue; // cannot happen once split; be safe
      const inner = [];
      const rest = [];
      for (const other of todo) {
        if (other.offset >= entity.end) rest.push(other);
        else if (other.end <= entity.end) inner.push(other);
        else {
          inner.push({ ...other, end: entity.end });
          rest.push({ ...other, offset: entity.end });
        }
      }
      rest.sort((a, b) => a.offset - b.offset || b.end - a.end);
      todo.length = 0;
      todo.push(...rest);
      if (entity.offset > position) parent.append(text.slice(position, entity.offset));
      const el = entityElement(entity, text.slice(entity.offset, entity.end), pane);
      const target = el.querySelector("[data-content]") || el;
      target.removeAttribute("data-content");
      fill(target, text, entity.offset, entity.end, inner, pane);
      parent.append(el);
      position = entity.end;
      // A line break right after a block (pre, blockquote) is the block's own end: as in
      // Telegram's apps, it does not add an empty line.
      if (BLOCKS.has(entity.type) && text[position] === "\n" && position < end) position += 1;
    }
    if (position < end) parent.append(text.slice(position, end));
  }

  function entityElement(entity, content, pane) {
    switch (entity.type) {
      case "bold": return h("b");
      case "italic": return h("i");
      case "underline": return h("u");
      case "strikethrough": return h("s");
      case "code": return h("code");
      case "pre": {
        const code = h("code", { "data-content": true, "data-language": entity.language || null });
        return h("pre", {}, code);
      }
      case "spoiler":
        return h("span", {
          class: "spoiler", title: t("reveal"),
          onclick: (event) => { event.currentTarget.classList.add("revealed"); },
        });
      case "blockquote": return h("blockquote");
      case "expandable_blockquote":
        return h("blockquote", {
          class: "expandable", title: t("expand"),
          onclick: (event) => { event.currentTarget.classList.add("expanded"); },
        });
      case "text_link": {
        const href = safeUrl(entity.url);
        return href ? h("a", { href, target: "_blank", rel: "noopener noreferrer", title: href })
          : h("span", { class: "link" });
      }
      case "url": {
        const href = safeUrl(/^[a-z][a-z0-9+.-]*:/i.test(content) ? content : "http://" + content);
        return href ? h("a", { href, target: "_blank", rel: "noopener noreferrer" })
          : h("span", { class: "link" });
      }
      case "bot_command":
        return h("span", {
          class: "bot-command",
          onclick: () => { if (pane) pane.sendText(content.replace(/@.*$/, "")); },
        });
      case "mention": case "text_mention": case "hashtag": case "cashtag":
        return h("span", { class: "mention" });
      default:
        return h("span", { class: "entity-" + String(entity.type).replace(/[^a-z_]/g, "") });
    }
  }

  // A one-line summary of a message for a quote: spoilers stay hidden.
  function snippet(message) {
    let text = message.text !== undefined ? message.text : message.caption || "";
    const entities = message.text !== undefined ? message.entities : message.caption_entities;
    for (const e of entities || []) {
      if (e.type === "spoiler") {
        text = text.slice(0, e.offset) + "░".repeat(e.length) + text.slice(e.offset + e.length);
      }
    }
    if (text) return text.replace(/\s+/g, " ");
    if (message.photo) return t("photo");
    if (message.document) return message.document.file_name || t("file");
    if (message.venue) return message.venue.title || t("location");
    if (message.location) return t("location");
    if (message.contact) return t("contact");
    return "…";
  }

  // -- the map ----------------------------------------------------------------------------------
  function rings(geometry) {
    if (!geometry) return [];
    if (geometry.type === "Polygon") return [geometry.coordinates];
    if (geometry.type === "MultiPolygon") return geometry.coordinates;
    return [];
  }

  // An equirectangular projection of the district, scaled at its middle latitude; exactly
  // invertible, so a click on the map gives back the point under it.
  function projection(features) {
    let minLon = Infinity, maxLon = -Infinity, minLat = Infinity, maxLat = -Infinity;
    for (const f of features) {
      for (const polygon of rings(f.geometry)) {
        for (const ring of polygon) {
          for (const [lon, lat] of ring) {
            minLon = Math.min(minLon, lon); maxLon = Math.max(maxLon, lon);
            minLat = Math.min(minLat, lat); maxLat = Math.max(maxLat, lat);
          }
        }
      }
    }
    if (!isFinite(minLon)) { minLon = 0; maxLon = 1; minLat = 0; maxLat = 1; }
    const cos = Math.cos(((minLat + maxLat) / 2) * Math.PI / 180);
    const width = 800, pad = 14;
    const k = width / Math.max(1e-9, (maxLon - minLon) * cos);
    const height = (maxLat - minLat) * k;
    return {
      width: width + 2 * pad, height: height + 2 * pad, minLon, maxLon, minLat, maxLat,
      project: (lon, lat) => [pad + (lon - minLon) * cos * k, pad + (maxLat - lat) * k],
      unproject: (x, y) => [minLon + (x - pad) / (cos * k), maxLat - (y - pad) / k],
    };
  }

  function pathData(geometry, proj) {
    const parts = [];
    for (const polygon of rings(geometry)) {
      for (const ring of polygon) {
        parts.push(ring.map(([lon, lat], i) => {
          const [x, y] = proj.project(lon, lat);
          return (i ? "L" : "M") + x.toFixed(1) + " " + y.toFixed(1);
        }).join("") + "Z");
      }
    }
    return parts.join("");
  }

  function centroid(geometry, proj) {
    const outer = (rings(geometry)[0] || [])[0] || [];
    let area = 0, cx = 0, cy = 0;
    const pts = outer.map(([lon, lat]) => proj.project(lon, lat));
    for (let i = 0; i < pts.length - 1; i++) {
      const [x0, y0] = pts[i], [x1, y1] = pts[i + 1];
      const cross = x0 * y1 - x1 * y0;
      area += cross; cx += (x0 + x1) * cross; cy += (y0 + y1) * cross;
    }
    if (Math.abs(area) < 1e-9) return pts[0] || [0, 0];
    return [cx / (3 * area), cy / (3 * area)];
  }

  function contains(geometry, lon, lat) {
    return rings(geometry).some((polygon) => {
      let inside = false;
      polygon.forEach((ring, index) => {
        let hit = false;
        for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
          const [xi, yi] = ring[i], [xj, yj] = ring[j];
          if ((yi > lat) !== (yj > lat) && lon < ((xj - xi) * (lat - yi)) / (yj - yi) + xi) hit = !hit;
        }
        if (hit) inside = index === 0 ? true : false;
      });
      return inside;
    });
  }

  function gridAt(lat, lon) {
    const features = (S.map && S.map.features) || [];
    return features.find((f) => f.properties && f.properties.level === "grid" &&
      contains(f.geometry, lon, lat)) || null;
  }

  function placesWithGroups() {
    return new Set((S.panes || []).map((p) => p.place).filter(Boolean));
  }

  // A grid's name on two or three short lines, so it fits its grid even on a phone: a Chinese
  // name splits in the middle (东湖一社区 / 第1网格), an English one between words.
  function wrapLabel(text) {
    if (!/\s/.test(text)) {
      if (text.length <= 6) return [text];
      const half = Math.ceil(text.length / 2);
      return [text.slice(0, half), text.slice(half)];
    }
    const words = [];
    for (const word of text.split(/\s+/)) {
      const last = words[words.length - 1];
      // "No. 1", "Grid 1": an abbreviation or a number stays with its neighbour.
      if (last && (/^\w{1,3}\.$/.test(last) || /^\d+$/.test(word))) {
        words[words.length - 1] = last + " " + word;
      } else words.push(word);
    }
    const lines = [];
    let line = "";
    for (const word of words) {
      if (line && (line + " " + word).length > 14) { lines.push(line); line = word; }
      else line = line ? line + " " + word : word;
    }
    if (line) lines.push(line);
    return lines;
  }

  const LEVEL_ORDER = { grid: 0, community: 1, street: 2, district: 3 };

  function drawMap(options) {
    const features = ((S.map && S.map.features) || []).slice()
      .sort((a, b) => (LEVEL_ORDER[a.properties.level] ?? 0) - (LEVEL_ORDER[b.properties.level] ?? 0));
    const proj = projection(features);
    const withGroups = placesWithGroups();
    const svg = h("svg:svg", {
      class: "map" + (options.small ? " small" : ""),
      viewBox: `0 0 ${proj.width.toFixed(1)} ${proj.height.toFixed(1)}`,
      role: options.small ? "img" : null,
    });
    const areas = h("svg:g", { class: "areas" });
    const labels = h("svg:g", { class: "labels" });
    for (const f of features) {
      const level = f.properties.level || "area";
      const grouped = level === "grid" && withGroups.has(f.properties.code);
      const path = h("svg:path", {
        d: pathData(f.geometry, proj),
        class: "area level-" + level + (grouped ? " has-group" : ""),
        // Only the picker's areas carry their code: a test (or a person's script) finds the
        // grid to click there, never in a location message's small map.
        "data-code": options.small ? null : f.properties.code,
      });
      if (!options.small) {
        path.append(h("svg:title", {
          text: mapName(f) + " (" + f.properties.code + ")" + (grouped ? " — " + t("has_group") : ""),
        }));
      }
      areas.append(path);
      if (!options.small && level === "grid") {
        const [x, y] = centroid(f.geometry, proj);
        const lines = wrapLabel(mapName(f));
        const label = h("svg:text", {
          x: x.toFixed(1), y: y.toFixed(1), class: "label" + (grouped ? " has-group" : ""),
        });
        lines.forEach((line, i) => label.append(h("svg:tspan", {
          x: x.toFixed(1), dy: i ? "1.15em" : (-(lines.length - 1) * 0.575).toFixed(3) + "em",
          text: line,
        })));
        labels.append(label);
      }
    }
    svg.append(areas, labels);
    if (options.point) {
      const [x, y] = proj.project(options.point.longitude, options.point.latitude);
      if (x >= 0 && y >= 0 && x <= proj.width && y <= proj.height) {
        svg.append(h("svg:circle", { class: "marker", cx: x.toFixed(1), cy: y.toFixed(1), r: 14 }));
      }
    }
    svg.projection = proj;
    return svg;
  }

  // -- the page -----------------------------------------------------------------------------------
  async function load() {
    if (loading) return loading;
    queued = queued || [];
    loading = (async () => {
      try {
        const state = await api("/sandbox/state");
        S = state;
        renderAll();
        const pending = queued || [];
        queued = null;
        for (const event of pending) apply(event);
      } catch (error) {
        queued = null;
        throw error;
      } finally {
        loading = null;
      }
    })();
    return loading;
  }

  function renderAll() {
    document.documentElement.lang = LANG_TAGS[S.language] || "en";
    document.title = t("title");
    const saved = new Map();
    for (const [id, pane] of panes) saved.set(id, pane.keep());
    panes.clear();
    const oldPanel = document.querySelector(".violations-panel");
    const panelOpen = !!oldPanel && !oldPanel.hidden;
    renderHeader();
    if (panelOpen) toggleViolations();
    const main = document.querySelector("main.panes");
    main.replaceChildren();
    for (const info of S.panes) {
      const pane = new Pane(info, saved.get(String(info.chat_id)));
      panes.set(pane.id, pane);
      main.append(pane.el);
      pane.restoreScroll();
    }
    renderLocationDialog();
    if (locationTarget) locationTarget.pane = panes.get(locationTarget.pane.id) || locationTarget.pane;
    renderAlertDialog();
    document.querySelector(".banner").textContent = t("disconnected");
  }

  function renderHeader() {
    const header = document.querySelector("header.top");
    const select = h("select", {
      name: "language", "aria-label": t("language"),
      onchange: (event) => changeLanguage(event.target.value),
    });
    for (const language of S.languages) {
      const option = h("option", { value: language.code, text: language.name });
      if (language.code === S.language) option.selected = true;
      select.append(option);
    }
    const violations = h("button", {
      type: "button", class: "violations-toggle", name: "violations",
      "aria-expanded": "false",
      onclick: () => toggleViolations(),
    }, icon("warning"), h("span", { class: "label", text: t("violations") }),
    h("span", { class: "count" }));
    header.replaceChildren(...[
      h("div", { class: "brand" },
        h("h1", { text: t("title") }),
        h("p", { class: "intro", text: t("intro") })),
      webChatEntry(),
      h("div", { class: "controls" },
        h("label", { class: "language" }, h("span", { text: t("language") }), select),
        h("div", { class: "bot-status", "data-status": S.bot_status },
          h("span", { class: "dot" }), h("span", { class: "label" }),
          h("button", {
            type: "button", name: "restart", class: "restart", title: t("restart_bot"),
            onclick: restartBot,
          }, icon("restart"), h("span", { text: t("restart_bot") }))),
        violations),
      h("section", { class: "violations-panel", hidden: true },
        h("h2", { text: t("violations") }),
        h("p", { class: "note" }),
        h("ol", { class: "violation-list" })),
    ].filter(Boolean));
    updateBotStatus();
    updateViolations();
  }

  // The second door: the bot's own web chat, for residents without Telegram. It refuses to be
  // framed, so it opens in a tab of its own; only a sandbox that runs the bot offers it.
  function webChatEntry() {
    const url = S.web_chat_url ? safeUrl(S.web_chat_url) : null;
    if (!url) return null;
    const place = new URL(url).searchParams.get("at") || "";
    // The same server has the centres' console.
    const console_ = new URL("/console", url).href;
    return h("div", { class: "web-chat" },
      h("a", { class: "web-chat-link", target: "_blank", rel: "noopener", "data-url": url },
        h("span", { class: "globe", "aria-hidden": "true", text: "🌐" }),
        h("span", { text: t("web_chat") })),
      h("a", { class: "console-link", target: "_blank", rel: "noopener",
               "data-url": console_, title: t("console_hint") },
        h("span", { "aria-hidden": "true", text: "🖥" }),
        h("span", { text: t("console") })),
      h("p", { class: "web-chat-hint", "data-hint": t("web_chat_hint", { place }) }));
  }

  function redrawWebChat() {
    const old = document.querySelector(".web-chat");
    const fresh = webChatEntry();
    if (old && fresh) old.replaceWith(fresh);
    else if (old) old.remove();
    else if (fresh) document.querySelector("header.top .brand").after(fresh);
    updateWebChat();
  }

  function updateWebChat() {
    const links = document.querySelectorAll(".web-chat-link, .console-link");
    if (!links.length) return;
    // Before the bot runs (or while it is started again) the address answers nothing yet.
    const ready = S.bot_status === "running";
    for (const one of links) {
      if (ready) one.setAttribute("href", one.dataset.url);
      else one.removeAttribute("href");
      one.setAttribute("aria-disabled", ready ? "false" : "true");
    }
    const link = links[0];
    const hint = document.querySelector(".web-chat-hint");
    hint.textContent = ready ? hint.dataset.hint : t("web_chat_waiting");
    link.title = hint.textContent;
  }

  function updateBotStatus() {
    updateWebChat();
    const box = document.querySelector(".bot-status");
    if (!box) return;
    box.dataset.status = S.bot_status;
    const key = "bot_" + S.bot_status;
    box.querySelector(".label").textContent = S.texts[key] ? t(key) : S.bot_status;
  }

  function updateViolations(fresh) {
    const toggle = document.querySelector(".violations-toggle");
    const panel = document.querySelector(".violations-panel");
    if (!toggle || !panel) return;
    const list = S.violations || [];
    // Without a specification nothing is checked: a count of 0 would claim the calls are right.
    toggle.dataset.count = S.spec === null ? "unchecked" : String(list.length);
    toggle.querySelector(".count").textContent = String(list.length);
    toggle.querySelector(".count").hidden = S.spec === null;
    let note;
    if (S.spec === null) note = t("no_spec");
    else if (list.length) note = S.spec ? t("spec_checked", { version: S.spec }) : "";
    else note = t("no_violations");
    toggle.title = note || t("violations");
    panel.querySelector(".note").textContent = note;
    panel.querySelector("ol").replaceChildren(...list.map((v) => h("li", { text: v })));
    if (fresh) {
      toggle.classList.remove("flash");
      void toggle.offsetWidth; // restart the animation
      toggle.classList.add("flash");
    }
  }

  function toggleViolations() {
    const panel = document.querySelector(".violations-panel");
    panel.hidden = !panel.hidden;
    document.querySelector(".violations-toggle").setAttribute("aria-expanded", String(!panel.hidden));
  }

  async function changeLanguage(language) {
    try {
      await api("/sandbox/language", { language });
      await load();
    } catch (error) {
      globalToast(error.message, "error");
      if (S) document.querySelector("select[name=language]").value = S.language;
    }
  }

  async function restartBot() {
    try {
      await api("/sandbox/bot/restart", {});
    } catch (error) {
      showAlert(error.message);
    }
  }

  function globalToast(text, kind) {
    toast(document.querySelector(".toasts.global"), text, kind);
  }

  function toast(container, text, kind) {
    if (!container) return;
    const el = h("div", { class: "toast" + (kind ? " " + kind : ""), role: "status", text });
    container.append(el);
    setTimeout(() => {
      el.classList.add("leaving");
      setTimeout(() => el.remove(), 300);
    }, kind === "error" ? 6000 : 3500);
  }

  function renderAlertDialog() {
    let dialog = document.querySelector("dialog.alert-dialog");
    if (!dialog) {
      dialog = h("dialog", { class: "alert-dialog" });
      document.body.append(dialog);
    }
    if (dialog.open) return; // the bot's alert stays as it is until it is closed
    dialog.replaceChildren(h("form", { method: "dialog", class: "dialog-body" },
      h("p", { class: "alert-text" }),
      h("div", { class: "dialog-buttons" },
        h("button", { type: "submit", name: "ok", class: "primary", text: t("ok") }))));
  }

  function showAlert(text) {
    const dialog = document.querySelector("dialog.alert-dialog");
    dialog.querySelector(".alert-text").textContent = text;
    if (!dialog.open) dialog.showModal();
  }

  // -- the location dialog ------------------------------------------------------------------------
  function renderLocationDialog() {
    let dialog = document.querySelector("dialog.location-dialog");
    if (!dialog) {
      dialog = h("dialog", {
        class: "location-dialog",
        onclose: () => { locationTarget = null; },
      });
      dialog.addEventListener("click", (event) => { if (event.target === dialog) dialog.close(); });
      document.body.append(dialog);
    }
    const svg = drawMap({});
    const marker = h("svg:circle", { class: "marker", r: 9, visibility: "hidden" });
    svg.append(marker);
    const latitude = h("input", {
      type: "number", name: "latitude", step: "any", min: "-90", max: "90", required: true,
      inputmode: "decimal",
    });
    const longitude = h("input", {
      type: "number", name: "longitude", step: "any", min: "-180", max: "180", required: true,
      inputmode: "decimal",
    });
    const where = h("p", { class: "map-where", "aria-live": "polite" });
    const describe = (lat, lon) => {
      const grid = gridAt(lat, lon);
      where.textContent = lat.toFixed(5) + ", " + lon.toFixed(5) + (grid ? " · " + mapName(grid) : "");
    };
    const pointAt = (event) => {
      const matrix = svg.getScreenCTM();
      if (!matrix) return null;
      const p = svg.createSVGPoint();
      p.x = event.clientX; p.y = event.clientY;
      const local = p.matrixTransform(matrix.inverse());
      const [lon, lat] = svg.projection.unproject(local.x, local.y);
      return { x: local.x, y: local.y, latitude: +lat.toFixed(6), longitude: +lon.toFixed(6) };
    };
    svg.addEventListener("mousemove", (event) => {
      const point = pointAt(event);
      if (point) describe(point.latitude, point.longitude);
    });
    svg.addEventListener("click", (event) => {
      const point = pointAt(event);
      if (!point) return;
      latitude.value = String(point.latitude);
      longitude.value = String(point.longitude);
      marker.setAttribute("cx", point.x.toFixed(1));
      marker.setAttribute("cy", point.y.toFixed(1));
      marker.setAttribute("visibility", "visible");
      shareLocation(point.latitude, point.longitude);
    });
    const legend = h("p", { class: "map-legend" },
      h("span", { class: "swatch has-group" }), h("span", { text: t("has_group") }));
    const form = h("form", {
      class: "coordinates",
      onsubmit: (event) => {
        event.preventDefault();
        const lat = parseFloat(latitude.value), lon = parseFloat(longitude.value);
        if (!isFinite(lat) || !isFinite(lon)) { latitude.reportValidity(); return; }
        shareLocation(lat, lon);
      },
    },
    h("label", {}, h("span", { text: t("latitude") }), latitude),
    h("label", {}, h("span", { text: t("longitude") }), longitude),
    h("button", { type: "submit", name: "share-location", class: "primary", text: t("share") }));
    dialog.replaceChildren(h("div", { class: "dialog-body" },
      h("div", { class: "dialog-head" },
        h("h2", { text: t("location_title") }),
        h("button", {
          type: "button", name: "close", class: "icon-button", title: t("close"),
          "aria-label": t("close"), onclick: () => dialog.close(),
        }, icon("close"))),
      h("p", { class: "hint", text: t("location_hint") }),
      h("div", { class: "map-box" }, svg, h("div", { class: "toasts" })),
      h("div", { class: "map-foot" }, legend, where),
      form));
    dialog.resetPoint = () => {
      latitude.value = ""; longitude.value = "";
      marker.setAttribute("visibility", "hidden");
      where.textContent = "";
    };
  }

  function openLocation(pane, fromKeyboard) {
    const dialog = document.querySelector("dialog.location-dialog");
    locationTarget = { pane, fromKeyboard: !!fromKeyboard };
    dialog.resetPoint();
    if (!dialog.open) dialog.showModal();
  }

  async function shareLocation(latitude, longitude) {
    const dialog = document.querySelector("dialog.location-dialog");
    const target = locationTarget;
    if (!target || target.busy) return; // one point per opening, however fast the clicks
    target.busy = true;
    // A refusal shows in the dialog: the chat is behind it.
    const ok = await target.pane.sendLocation(latitude, longitude, target.fromKeyboard,
      dialog.querySelector(".toasts"));
    target.busy = false;
    if (ok && dialog.open) dialog.close();
  }

  // -- one chat -------------------------------------------------------------------------------------
  class Pane {
    constructor(info, kept) {
      kept = kept || {};
      this.info = info;
      this.id = String(info.chat_id);
      this.chatId = info.chat_id;
      this.isGroup = info.type !== "private";
      this.messages = new Map(info.messages.map((m) => [m.message_id, m]));
      this.nodes = new Map();
      this.speaker = info.speakers.includes(kept.speaker) ? kept.speaker : info.speakers[0];
      this.replyTo = kept.replyTo && this.messages.has(kept.replyTo.message_id) ? kept.replyTo : null;
      this.editing = kept.editing && this.messages.has(kept.editing.message_id) ? kept.editing : null;
      this.staged = kept.staged || null;
      this.keyboard = info.keyboard;
      this.blocked = info.blocked;
      this.stick = kept.stick !== undefined ? kept.stick : true;
      this.keptScroll = kept.scrollTop;
      this.typingTimer = null;
      this.build(kept.text || "");
      this.refresh();
      this.renderContext();
      this.renderStaged();
      this.renderKeyboard();
      this.renderBlocked();
    }

    keep() {
      return {
        text: this.textarea.value, speaker: this.speaker, replyTo: this.replyTo,
        editing: this.editing, staged: this.staged, stick: this.stick,
        scrollTop: this.scroller.scrollTop,
      };
    }

    build(text) {
      const info = this.info;
      const placeFeature = ((S.map && S.map.features) || [])
        .find((f) => f.properties.code === info.place);
      this.typingEl = h("div", { class: "typing", hidden: true });
      const head = h("header", { class: "pane-head" },
        h("div", { class: "avatar", "aria-hidden": "true", text: (info.title || "?").slice(0, 1) }),
        h("div", { class: "titles" },
          h("div", { class: "pane-role", text: info.role }),
          h("div", { class: "pane-title", text: info.title, title: info.title }),
          placeFeature ? h("div", {
            class: "pane-place", text: mapName(placeFeature), title: info.place,
          }) : null,
          this.typingEl));
      if (!this.isGroup) {
        this.blockButton = h("button", {
          type: "button", name: "block", class: "block-toggle",
          onclick: () => this.toggleBlocked(),
        }, icon("block"), h("span", { class: "label" }));
        head.append(this.blockButton);
      }
      this.el = h("section", {
        class: "pane " + (this.isGroup ? "group" : "private"),
        "data-chat-id": this.id, "data-type": info.type,
      }, head);
      if (this.isGroup) {
        const select = h("select", {
          name: "speaker", "aria-label": t("speaking_as"),
          onchange: (event) => this.setSpeaker(Number(event.target.value)),
        });
        for (const userId of info.speakers) {
          const p = person(userId);
          const option = h("option", {
            value: String(userId),
            text: p ? p.name + (p.role ? " · " + p.role : "") : String(userId),
          });
          if (userId === this.speaker) option.selected = true;
          select.append(option);
        }
        this.speakerSelect = select;
        this.el.append(h("label", { class: "speaker" },
          icon("person"), h("span", { text: t("speaking_as") }), select));
      }
      this.list = h("div", { class: "list" });
      // A new private chat with a bot: Telegram shows what the bot is for and a Start button
      // (which sends /start) instead of an empty chat, so nobody wonders what to type.
      this.emptyEl = this.isGroup ? h("p", { class: "empty", text: t("empty_chat") })
        : h("div", { class: "empty start-hint" },
          h("p", { text: t("start_hint", { bot: (S.bot && S.bot.first_name) || "" }) }),
          h("button", {
            type: "button", name: "start", class: "start-button",
            onclick: () => this.sendText("/start"),
          }, t("start_button")));
      this.scroller = h("div", { class: "messages" }, this.emptyEl, this.list);
      this.scroller.addEventListener("scroll", () => { this.stick = this.atBottom(); });
      // Whatever changes the size of the chat or of its content (a photo loading, a keyboard or
      // a note appearing), a chat that was at its end stays there.
      if (window.ResizeObserver) {
        const keep = new ResizeObserver(() => { if (this.stick) this.scrollToBottom(); });
        keep.observe(this.scroller);
        keep.observe(this.list);
      }
      this.toasts = h("div", { class: "toasts" });
      this.blockedNote = h("p", { class: "blocked-note", hidden: true });
      this.el.append(h("div", { class: "chat-area" }, this.scroller, this.toasts), this.blockedNote);

      this.contextBar = h("div", { class: "context-bar", hidden: true });
      this.stagedBar = h("div", { class: "staged", hidden: true });
      this.commandMenu = h("div", { class: "command-menu", hidden: true, role: "menu" });
      this.textarea = h("textarea", {
        name: "text", rows: "1", placeholder: t("write"), "aria-label": t("write"),
        onkeydown: (event) => this.onKey(event),
        oninput: () => this.autosize(),
      });
      this.textarea.value = text;
      this.photoInput = h("input", {
        type: "file", name: "photo", accept: "image/*", multiple: true, class: "file-input",
        "aria-label": t("photo"),
        onchange: (event) => this.stage("photo", event.target),
      });
      this.documentInput = h("input", {
        type: "file", name: "document", class: "file-input", "aria-label": t("file"),
        onchange: (event) => this.stage("document", event.target),
      });
      const row = h("div", { class: "compose-row" },
        h("button", {
          type: "button", name: "commands", class: "icon-button", title: t("commands"),
          "aria-label": t("commands"), onclick: () => this.toggleCommands(),
        }, icon("slash")),
        h("label", { class: "icon-button attach", title: t("photo") }, icon("camera"), this.photoInput),
        h("label", { class: "icon-button attach", title: t("file") }, icon("clip"), this.documentInput),
        h("button", {
          type: "button", name: "location", class: "icon-button", title: t("location"),
          "aria-label": t("location"), onclick: () => openLocation(this, false),
        }, icon("pin")),
        this.textarea,
        h("button", {
          type: "button", name: "send", class: "send", title: t("send"), "aria-label": t("send"),
          onclick: () => this.send(),
        }, icon("send")));
      this.keyboardEl = h("div", { class: "reply-keyboard", hidden: true });
      this.el.append(h("footer", { class: "composer" },
        this.commandMenu, this.contextBar, this.stagedBar, row, this.keyboardEl));
      this.autosize();
    }

    // -- messages ---------------------------------------------------------------------------------
    atBottom() {
      const s = this.scroller;
      return s.scrollHeight - s.scrollTop - s.clientHeight < 48;
    }

    scrollToBottom() {
      this.scroller.scrollTop = this.scroller.scrollHeight;
      this.stick = true;
    }

    restoreScroll() {
      if (this.stick || this.keptScroll === undefined) this.scrollToBottom();
      else this.scroller.scrollTop = this.keptScroll;
    }

    put(message) {
      this.messages.set(message.message_id, message);
      if (isBot(message.from)) this.hideTyping();
      this.refresh();
    }

    remove(messageId) {
      if (!this.messages.delete(messageId)) return;
      if (this.replyTo && this.replyTo.message_id === messageId) this.setContext(null, null);
      if (this.editing && this.editing.message_id === messageId) this.setContext(null, null);
      this.refresh();
    }

    blocks() {
      const sorted = [...this.messages.values()].sort((a, b) => a.message_id - b.message_id);
      const blocks = [];
      for (const message of sorted) {
        const last = blocks[blocks.length - 1];
        if (message.media_group_id && last && last[0].media_group_id === message.media_group_id) {
          last.push(message);
        } else blocks.push([message]);
      }
      return blocks;
    }

    refresh() {
      const stick = this.stick || this.atBottom();
      const seen = new Set();
      let cursor = null;
      let previous = null;
      for (const block of this.blocks()) {
        const key = block[0].message_id;
        const sig = JSON.stringify(block);
        let entry = this.nodes.get(key);
        if (!entry || entry.sig !== sig) {
          const el = this.renderBlock(block);
          if (entry) entry.el.replaceWith(el);
          entry = { el, sig };
          this.nodes.set(key, entry);
        }
        seen.add(key);
        const wanted = cursor ? cursor.nextSibling : this.list.firstChild;
        if (entry.el !== wanted) this.list.insertBefore(entry.el, wanted);
        const first = block[0];
        const sameSender = previous && previous.from && first.from &&
          previous.from.id === first.from.id && first.date - previous.date < 300 &&
          !first.reply_to_message;
        entry.el.classList.toggle("continued", !!sameSender);
        previous = block[block.length - 1];
        cursor = entry.el;
      }
      for (const [key, entry] of this.nodes) {
        if (!seen.has(key)) { entry.el.remove(); this.nodes.delete(key); }
      }
      this.emptyEl.hidden = this.nodes.size > 0;
      this.updateOwn();
      if (stick) this.scrollToBottom();
    }

    renderBlock(block) {
      const first = block[0];
      const fromBot = isBot(first.from);
      const el = h("div", {
        class: "message " + (fromBot ? "from-bot" : "from-person"),
        "data-message-id": String(first.message_id),
        "data-message-ids": block.length > 1 ? block.map((m) => m.message_id).join(" ") : null,
        "data-from-bot": String(fromBot),
        "data-from-id": first.from ? String(first.from.id) : null,
        id: "m" + this.id + "-" + first.message_id,
      });
      if (this.isGroup) {
        const p = first.from && person(first.from.id);
        const role = fromBot ? t("bot") : p && p.role;
        el.append(h("div", { class: "sender", "data-color": colorIndex(first.from) },
          h("span", { class: "name", text: senderName(first) }),
          role ? h("span", { class: "role", text: role }) : null));
      }
      const bubble = h("div", { class: "bubble" });
      if (first.reply_to_message) bubble.append(this.quote(first.reply_to_message));
      if (block.length > 1) {
        bubble.classList.add("has-media");
        bubble.append(h("div", { class: "album", "data-count": String(block.length) },
          block.map((m) => photoLink(m.photo))));
      } else {
        const content = this.content(first);
        if (content) {
          if (first.photo || first.location) bubble.classList.add("has-media");
          bubble.append(content);
        }
      }
      const texted = block.find((m) => m.text !== undefined || m.caption);
      if (texted) {
        const isText = texted.text !== undefined;
        const text = isText ? texted.text : texted.caption;
        bubble.append(h("div", { class: "text" },
          richText(text, isText ? texted.entities : texted.caption_entities, this)));
      }
      const edited = block.some((m) => m.edit_date);
      bubble.append(h("span", { class: "meta" },
        edited ? h("span", { class: "edited", text: t("edited") }) : null,
        h("time", { text: formatTime(first.date) })));
      el.append(bubble);
      const keyed = block.find((m) => m.reply_markup && m.reply_markup.inline_keyboard);
      if (keyed) el.append(this.inlineKeyboard(keyed));
      const actions = h("div", { class: "actions" },
        h("button", {
          type: "button", name: "reply", class: "action", title: t("reply"),
          onclick: () => this.setContext("reply", first),
        }, icon("reply"), h("span", { text: t("reply") })));
      if (!fromBot && first.text !== undefined && first.from &&
          this.info.speakers.includes(first.from.id)) {
        el.dataset.editable = "true";
        actions.append(h("button", {
          type: "button", name: "edit", class: "action", title: t("edit"),
          onclick: () => this.setContext("edit", first),
        }, icon("edit"), h("span", { text: t("edit") })));
      }
      el.append(actions);
      return el;
    }

    content(message) {
      if (message.photo) return h("div", { class: "photo" }, photoLink(message.photo));
      if (message.document) {
        const d = message.document;
        return h("a", {
          class: "document", href: fileUrl(d.file_id), download: d.file_name || true,
          target: "_blank", rel: "noopener",
        }, h("span", { class: "doc-icon" }, icon("doc")),
        h("span", { class: "doc-text" },
          h("span", { class: "doc-name", text: d.file_name || t("file") }),
          h("span", { class: "doc-size", text: formatSize(d.file_size) })));
      }
      if (message.venue || message.location) {
        const where = (message.venue && message.venue.location) || message.location;
        const grid = gridAt(where.latitude, where.longitude);
        return h("div", { class: "location" },
          drawMap({ small: true, point: where }),
          message.venue ? h("div", { class: "venue-title", text: message.venue.title }) : null,
          message.venue ? h("div", { class: "venue-address", text: message.venue.address }) : null,
          h("div", { class: "coords" }, icon("pin"),
            h("span", { text: where.latitude.toFixed(5) + ", " + where.longitude.toFixed(5) }),
            grid ? h("span", { class: "grid-name", text: mapName(grid) }) : null));
      }
      if (message.contact) {
        const c = message.contact;
        return h("div", { class: "contact" },
          h("span", { class: "avatar small", text: (c.first_name || "?").slice(0, 1) }),
          h("span", { class: "contact-text" },
            h("span", { class: "contact-name", text: [c.first_name, c.last_name].filter(Boolean).join(" ") }),
            h("span", { class: "contact-phone", text: c.phone_number })));
      }
      if (message.text === undefined && !message.caption) {
        const kind = UNSUPPORTED_KINDS.find((k) => k in message) ||
          Object.keys(message).find((k) => !["message_id", "from", "chat", "date", "sender_chat",
            "message_thread_id", "reply_to_message", "edit_date", "is_topic_message"].includes(k)) ||
          "?";
        return h("div", { class: "unsupported", text: t("unsupported_message", { kind }) });
      }
      return null;
    }

    quote(replied) {
      return h("button", {
        type: "button", class: "quote", "data-color": colorIndex(replied.from),
        onclick: () => this.flash(replied.message_id),
      }, h("span", { class: "quote-name", text: senderName(replied) }),
      h("span", { class: "quote-text", text: snippet(replied) }));
    }

    flash(messageId) {
      let el = this.list.querySelector(`.message[data-message-id="${messageId}"]`);
      if (!el) {
        el = [...this.list.querySelectorAll(".message[data-message-ids]")]
          .find((n) => n.dataset.messageIds.split(" ").includes(String(messageId)));
      }
      if (!el) return;
      el.scrollIntoView({ block: "center", behavior: "smooth" });
      el.classList.remove("flash");
      void el.offsetWidth;
      el.classList.add("flash");
    }

    inlineKeyboard(message) {
      const box = h("div", { class: "inline-keyboard" });
      for (const row of message.reply_markup.inline_keyboard) {
        const line = h("div", { class: "row" });
        for (const button of row) {
          const text = String(button.text || "");
          if (button.callback_data !== undefined) {
            const el = h("button", { type: "button", class: "inline-button", text });
            el.addEventListener("click", () => this.press(message, button, el));
            line.append(el);
          } else if (button.url && safeUrl(button.url)) {
            const href = safeUrl(button.url);
            line.append(h("a", {
              class: "inline-button link", href, target: "_blank", rel: "noopener noreferrer",
              title: t("link_button", { url: href }), text,
            }));
          } else {
            line.append(h("button", {
              type: "button", class: "inline-button unsupported", "aria-disabled": "true",
              title: t("unsupported_button"), text,
              onclick: () => toast(this.toasts, t("unsupported_button")),
            }));
          }
        }
        box.append(line);
      }
      return box;
    }

    async press(message, button, el) {
      el.classList.add("pending");
      clearTimeout(el.pendingTimer);
      el.pendingTimer = setTimeout(() => el.classList.remove("pending"), PRESS_MS);
      try {
        await api(`/sandbox/chats/${this.chatId}/press`, {
          from: this.speaker, message_id: message.message_id, data: button.callback_data,
        });
      } catch (error) {
        el.classList.remove("pending");
        toast(this.toasts, error.message, "error");
      }
    }

    // The bot asked with ForceReply: like a Telegram app, open the reply box on its question,
    // as the person it asks when it names one (selective).
    forceReply(event) {
      const question = this.messages.get(event.message_id);
      if (!question || this.editing) return;
      const asked = (event.only_for || []).find((id) => this.info.speakers.includes(id));
      if (event.only_for && event.only_for.length && asked === undefined) return;
      if (asked !== undefined && this.isGroup && asked !== this.speaker) {
        this.speakerSelect.value = String(asked);
        this.setSpeaker(asked);
      }
      this.setContext("reply", question);
      if (event.placeholder) this.textarea.placeholder = event.placeholder;
    }

    answered(event) {
      const node = this.list.querySelector(`.message[data-message-id="${event.message_id}"]`);
      if (node) node.querySelectorAll(".inline-button.pending").forEach((b) => b.classList.remove("pending"));
      if (event.show_alert && event.text) showAlert(event.text);
      else if (event.text) toast(this.toasts, event.text);
      else if (event.url && safeUrl(event.url)) toast(this.toasts, t("link_button", { url: safeUrl(event.url) }));
    }

    updateOwn() {
      for (const node of this.list.querySelectorAll(".message[data-editable]")) {
        const mine = Number(node.dataset.fromId) === this.speaker;
        const button = node.querySelector("button[name=edit]");
        if (button) button.hidden = !mine;
      }
    }

    // -- people and chat state ----------------------------------------------------------------------
    setSpeaker(userId) {
      this.speaker = userId;
      if (this.editing && this.editing.from && this.editing.from.id !== userId) this.setContext(null, null);
      this.updateOwn();
      if (!this.commandMenu.hidden) this.renderCommands();
    }

    showTyping() {
      this.typingEl.textContent = ((S.bot && S.bot.first_name) || "") + " " + t("typing");
      this.typingEl.hidden = false;
      clearTimeout(this.typingTimer);
      this.typingTimer = setTimeout(() => this.hideTyping(), TYPING_MS);
    }

    hideTyping() {
      clearTimeout(this.typingTimer);
      this.typingEl.hidden = true;
    }

    setBlocked(blocked) {
      this.blocked = blocked;
      this.renderBlocked();
    }

    renderBlocked() {
      if (this.isGroup) return;
      const blockLabel = this.blocked ? t("unblock") : t("block");
      this.blockButton.querySelector(".label").textContent = blockLabel;
      this.blockButton.title = blockLabel; // a narrow pane shows only the icon
      this.blockButton.classList.toggle("active", this.blocked);
      this.blockButton.setAttribute("aria-pressed", String(this.blocked));
      this.blockedNote.textContent = t("blocked");
      this.blockedNote.hidden = !this.blocked;
      this.el.classList.toggle("is-blocked", this.blocked);
    }

    async toggleBlocked() {
      try {
        const result = await api(`/sandbox/people/${this.chatId}/blocked`, { blocked: !this.blocked });
        this.setBlocked(!!result.blocked);
      } catch (error) {
        toast(this.toasts, error.message, "error");
      }
    }

    setKeyboard(keyboard) {
      this.keyboard = keyboard;
      this.renderKeyboard();
    }

    renderKeyboard() {
      const keyboard = this.keyboard && this.keyboard.keyboard ? this.keyboard : null;
      this.textarea.placeholder = (keyboard && keyboard.input_field_placeholder) || t("write");
      this.keyboardEl.hidden = !keyboard;
      this.keyboardEl.replaceChildren();
      if (!keyboard) return;
      const stick = this.stick;
      for (const row of keyboard.keyboard) {
        const line = h("div", { class: "row" });
        for (const raw of row) {
          const button = typeof raw === "string" ? { text: raw } : raw;
          const el = h("button", { type: "button", text: String(button.text || "") });
          if (button.request_contact) {
            el.classList.add("request");
            el.addEventListener("click", () => this.sendJson({ contact: true, keyboard: true }, false));
          } else if (button.request_location) {
            el.classList.add("request");
            el.addEventListener("click", () => openLocation(this, true));
          } else if (button.request_users || button.request_chat || button.request_poll ||
                     button.web_app || button.request_managed_bot) {
            el.classList.add("unsupported");
            el.setAttribute("aria-disabled", "true");
            el.title = t("unsupported_button");
            el.addEventListener("click", () => toast(this.toasts, t("unsupported_button")));
          } else {
            el.addEventListener("click", () => this.sendJson({ text: button.text, keyboard: true }, false));
          }
          line.append(el);
        }
        this.keyboardEl.append(line);
      }
      if (stick) this.scrollToBottom();
    }

    // -- the composer -------------------------------------------------------------------------------
    onKey(event) {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        this.send();
      } else if (event.key === "Escape") {
        if (!this.commandMenu.hidden) this.commandMenu.hidden = true;
        else if (this.replyTo || this.editing) this.setContext(null, null);
      }
    }

    autosize() {
      const area = this.textarea;
      area.style.height = "auto";
      area.style.height = Math.min(area.scrollHeight + 2, 160) + "px";
    }

    setContext(kind, message) {
      const wasEditing = !!this.editing;
      this.replyTo = kind === "reply" ? message : null;
      this.editing = kind === "edit" ? message : null;
      if (this.editing) {
        if (this.isGroup && message.from && message.from.id !== this.speaker) {
          this.speaker = message.from.id;
          this.speakerSelect.value = String(this.speaker);
        }
        this.textarea.value = message.text;
      } else if (wasEditing) this.textarea.value = "";
      this.renderContext();
      this.autosize();
      if (kind) this.textarea.focus();
    }

    renderContext() {
      const message = this.replyTo || this.editing;
      this.contextBar.hidden = !message;
      this.el.classList.toggle("is-editing", !!this.editing);
      if (!message) { this.contextBar.replaceChildren(); return; }
      const label = this.editing ? t("editing") : t("replying_to", { name: senderName(message) });
      this.contextBar.replaceChildren(
        icon(this.editing ? "edit" : "reply"),
        h("div", { class: "context-text" },
          h("span", { class: "context-label", text: label }),
          h("span", { class: "context-snippet", text: snippet(message) })),
        h("button", {
          type: "button", name: "cancel", class: "icon-button", title: t("cancel"),
          "aria-label": t("cancel"), onclick: () => this.setContext(null, null),
        }, icon("close")));
    }

    stage(kind, input) {
      const files = [...input.files];
      input.value = "";
      if (!files.length) return;
      if (this.editing) this.setContext(null, null);
      if (kind === "photo" && this.staged && this.staged.kind === "photo") {
        this.staged.files.push(...files);
      } else {
        this.staged = { kind, files: kind === "document" ? files.slice(0, 1) : files };
      }
      this.renderStaged();
      this.textarea.focus();
    }

    renderStaged() {
      const staged = this.staged;
      this.stagedBar.hidden = !staged;
      this.textarea.placeholder = staged ? t("caption")
        : (this.keyboard && this.keyboard.input_field_placeholder) || t("write");
      for (const url of this.previewUrls || []) URL.revokeObjectURL(url);
      this.previewUrls = [];
      if (!staged) { this.stagedBar.replaceChildren(); return; }
      const items = staged.files.map((file, index) => {
        let preview;
        if (staged.kind === "photo") {
          const url = URL.createObjectURL(file);
          this.previewUrls.push(url);
          preview = h("img", { src: url, alt: file.name });
        } else {
          preview = h("span", { class: "doc-icon" }, icon("doc"));
        }
        return h("div", { class: "staged-item " + staged.kind },
          preview,
          staged.kind === "document" ? h("span", { class: "doc-name", text: file.name }) : null,
          h("button", {
            type: "button", class: "remove", title: t("remove_attachment"),
            "aria-label": t("remove_attachment"),
            onclick: () => {
              staged.files.splice(index, 1);
              if (!staged.files.length) this.staged = null;
              this.renderStaged();
            },
          }, icon("close")));
      });
      this.stagedBar.replaceChildren(...items);
    }

    async send() {
      const text = this.textarea.value;
      if (this.editing) {
        if (!text.trim()) return;
        const editing = this.editing;
        try {
          const result = await api(`/sandbox/chats/${this.chatId}/edit`, {
            from: editing.from.id, message_id: editing.message_id, text,
          });
          this.textarea.value = "";
          this.setContext(null, null);
          if (result && result.message) this.put(result.message);
        } catch (error) {
          toast(this.toasts, error.message, "error");
        }
        return;
      }
      if (this.staged) {
        const form = new FormData();
        form.append("from", String(this.speaker));
        if (text.trim()) form.append("caption", text);
        if (this.replyTo) form.append("reply_to", String(this.replyTo.message_id));
        for (const file of this.staged.files) form.append(this.staged.kind, file, file.name);
        try {
          const result = await api(`/sandbox/chats/${this.chatId}/messages`, undefined, form);
          this.staged = null;
          this.renderStaged();
          this.textarea.value = "";
          this.autosize();
          if (this.replyTo) this.setContext(null, null);
          this.sent(result);
        } catch (error) {
          toast(this.toasts, error.message, "error");
        }
        return;
      }
      if (!text.trim()) return;
      const body = { text };
      if (this.replyTo) body.reply_to = this.replyTo.message_id;
      await this.sendJson(body, true);
    }

    // A command: from the menu, or clicked in a message.
    async sendText(text) {
      return this.sendJson({ text }, false);
    }

    async sendLocation(latitude, longitude, fromKeyboard, toasts) {
      const body = { location: { latitude, longitude } };
      if (fromKeyboard) body.keyboard = true;
      else if (this.replyTo) body.reply_to = this.replyTo.message_id;
      return this.sendJson(body, false, toasts);
    }

    // One JSON message; the composer's text is cleared only when it was what was sent.
    async sendJson(body, clearText, toasts) {
      try {
        const result = await api(`/sandbox/chats/${this.chatId}/messages`,
          { from: this.speaker, ...body });
        if (clearText) {
          this.textarea.value = "";
          this.autosize();
        }
        if (body.reply_to !== undefined) this.setContext(null, null);
        this.sent(result);
        return true;
      } catch (error) {
        toast(toasts || this.toasts, error.message, "error");
        return false;
      }
    }

    sent(result) {
      if (!this.isGroup && this.blocked) this.setBlocked(false); // writing again unblocks
      for (const message of (result && result.messages) || []) {
        this.messages.set(message.message_id, message);
      }
      this.stick = true;
      this.refresh();
      this.scrollToBottom();
    }

    toggleCommands() {
      this.commandMenu.hidden = !this.commandMenu.hidden;
      if (!this.commandMenu.hidden) this.renderCommands();
    }

    renderCommands() {
      const menu = ((S.commands || {})[this.id] || {})[String(this.speaker)] || [];
      this.commandMenu.replaceChildren();
      if (!menu.length) {
        this.commandMenu.append(h("p", { class: "empty", text: t("no_commands") }));
        return;
      }
      for (const item of menu) {
        const command = "/" + item.command;
        this.commandMenu.append(h("div", { class: "command-item", role: "none" },
          h("button", {
            type: "button", class: "command", role: "menuitem", "data-command": item.command,
            onclick: () => { this.commandMenu.hidden = true; this.sendText(command); },
          }, h("span", { class: "command-name", text: command }),
          h("span", { class: "command-description", text: item.description })),
          h("button", {
            type: "button", class: "icon-button insert", title: t("insert_command"),
            "aria-label": t("insert_command"),
            onclick: () => {
              this.commandMenu.hidden = true;
              const area = this.textarea;
              area.value = command + " " + area.value.replace(/^\/\S*\s*/, "");
              area.focus();
              area.setSelectionRange(command.length + 1, command.length + 1);
              this.autosize();
            },
          }, icon("insert"))));
      }
    }
  }

  function photoLink(sizes) {
    const best = sizes && sizes.length ? sizes[sizes.length - 1] : null;
    if (!best) return h("span", { class: "missing", text: t("photo") });
    const img = h("img", { src: fileUrl(best.file_id), alt: t("photo"), loading: "lazy" });
    const link = h("a", { href: fileUrl(best.file_id), target: "_blank", rel: "noopener" }, img);
    if (best.width && best.height) img.style.aspectRatio = best.width + " / " + best.height;
    img.addEventListener("error", () => link.replaceWith(h("span", { class: "missing", text: t("photo") })));
    return link;
  }

  function colorIndex(user) {
    if (!user) return "0";
    if (isBot(user)) return "bot";
    return String(Math.abs(Number(user.id)) % 7);
  }

  // -- live events ----------------------------------------------------------------------------------
  function apply(event) {
    if (!S) return;
    const pane = event.chat_id !== undefined ? panes.get(String(event.chat_id)) : null;
    switch (event.type) {
      case "message":
        if (pane && event.message) pane.put(event.message);
        break;
      case "deleted":
        if (pane) pane.remove(event.message_id);
        break;
      case "answer":
        if (pane) pane.answered(event);
        else if (event.text) (event.show_alert ? showAlert(event.text) : globalToast(event.text));
        break;
      case "keyboard":
        if (pane) pane.setKeyboard(event.keyboard || null);
        break;
      case "force_reply":
        if (pane) pane.forceReply(event);
        break;
      case "action":
        if (pane) pane.showTyping();
        break;
      case "violation":
        S.violations = (S.violations || []).concat(
          (event.violations || []).map((v) => event.method + ": " + v));
        updateViolations(true);
        break;
      case "commands":
        S.commands = event.menus || {};
        for (const p of panes.values()) if (!p.commandMenu.hidden) p.renderCommands();
        break;
      case "bot":
        S.bot_status = event.status;
        updateBotStatus();
        break;
      case "web_chat":
        // The demo gave its bot another port (the old one was taken): draw the link anew.
        S.web_chat_url = event.url || null;
        redrawWebChat();
        break;
      case "blocked": {
        const owner = panes.get(String(event.user_id));
        if (owner) owner.setBlocked(!!event.blocked);
        break;
      }
      case "language":
        if (event.language !== S.language) load().catch(() => {});
        break;
      default:
        break;
    }
  }

  function setConnected(connected) {
    document.body.classList.toggle("offline", !connected);
    document.querySelector(".banner").hidden = connected;
  }

  function connect() {
    const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/sandbox/events";
    let ws;
    try {
      ws = new WebSocket(url);
    } catch (_) {
      setTimeout(connect, 2000);
      return;
    }
    socket = ws;
    ws.onopen = () => {
      // A state fetched before the socket opened may miss what happened in between: fetch again.
      queued = queued || [];
      Promise.resolve(loading).catch(() => {}).then(() => load()).then(() => { retries = 0; setConnected(true); }, () => ws.close());
    };
    ws.onmessage = (message) => {
      let event;
      try {
        event = JSON.parse(message.data);
      } catch (_) {
        return;
      }
      if (queued) queued.push(event);
      else apply(event);
    };
    ws.onclose = () => {
      if (socket !== ws) return;
      setConnected(false);
      const delay = Math.min(10000, 500 * 2 ** retries) * (0.8 + Math.random() * 0.4);
      retries += 1;
      setTimeout(connect, delay);
    };
  }

  document.addEventListener("click", (event) => {
    for (const pane of panes.values()) {
      if (!pane.commandMenu.hidden && !pane.commandMenu.contains(event.target) &&
          !event.target.closest("button[name=commands]")) {
        pane.commandMenu.hidden = true;
      }
    }
  });

  function start() {
    load().catch(() => setConnected(false));
    connect();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
