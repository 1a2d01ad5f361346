// The gridgate centre console: the page the district, street and community centres and the desk
// leads keep open at their desks (and on the centre's big screen) to supervise the tickets.
//
// It speaks the console's HTTP contract (bot/console/): a sign-in through the bot (a QR code and
// a t.me link, polled until the person has pressed Start), then /me for the words, the CSRF token
// and the nodes the person supervises. Three views of the current node — the map of its grids, its
// rates beside its children's, the queue of tickets that need a push — and a ticket page with
// "nudge" and "pass it up". /live (server-sent events) says when something changed; the view on
// screen is fetched again. The place in the tree and the view live in the address (#map/12,
// #ticket/345), so Back works. No framework, no build step, nothing from outside the origin
// (CSP default-src 'self'); everything the server sends is set as text, never as HTML.
"use strict";

(() => {
  const { h } = window.ggDom; // bot/pages/static/dom.js
  const LANG_TAGS = { zh_Hans: "zh-Hans", zh_Hant: "zh-Hant", en: "en" };
  const VIEWS = ["map", "rates", "queue"];
  const RATES = ["response", "resolution", "on_time", "satisfaction"];
  const AGES = [1, 4, 24, 72, 168]; // hours, for the "open for at least" filter
  const PAGE = 50;
  const POLL_MS = 2000; // sign-in status
  const REFRESH_MS = 1000; // a burst of "changed" events: one refetch
  const ROTATE_MS = 20000; // wall display: next view
  // Words shown before the server has given any (the sign-in screen of a first visit).
  const FALLBACK = {
    title: "综治中心 / Centre console", signin_title: "通过 Telegram 登录 / Sign in with Telegram",
    signin_open: "Telegram", signin_new: "↻", signin_expires: "{time}", signin_expired: "⌛",
    error: "网络错误 / Network error", loading: "…",
  };

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];
  const S = {
    csrf: "", name: "", admin: false, language: "zh_Hans", languages: [], strings: {}, roots: [],
    nodes: new Map(), kids: new Map(), // id → node; id → [child nodes]
    view: "map", node: null, ticket: null,
    period: "today", from: "", to: "",
    queue: { view: "overdue", category: "", status: "", age: "", q: "", offset: 0, total: 0 },
    categories: new Map(), statuses: new Map(), // seen in the queue: code → name
    map: null, grid: null, // the last /map answer; the selected grid's id
    wall: false, fullscreen: false,
  };
  let signin = null; // {poll, tick, expires} while the sign-in screen waits
  let events = null, refreshTimer = null, rotateTimer = null, searchTimer = null;
  let loadSeq = 0; // the latest view load: an older answer arriving late is dropped
  let cameFromView = false; // the ticket page was opened from a view of this page (Back works)

  // -- small helpers ------------------------------------------------------------------------------
  function t(key, values) {
    let text = S.strings[key] || FALLBACK[key] || "";
    for (const [name, value] of Object.entries(values || {})) text = text.split(`{${name}}`).join(value);
    return text;
  }


  const tag = () => LANG_TAGS[S.language] || "zh-Hans";
  const number = (n) => (typeof n === "number" ? n.toLocaleString(tag()) : "–");
  const percent = (rate) => (typeof rate === "number"
    ? (rate * 100).toLocaleString(tag(), { maximumFractionDigits: 1 }) + " %" : "–");

  function formatTime(iso, withDate = true) {
    const date = new Date(iso);
    if (isNaN(date)) return "";
    const options = { hour: "2-digit", minute: "2-digit" };
    if (withDate) Object.assign(options, { month: "2-digit", day: "2-digit" });
    return date.toLocaleString(tag(), options);
  }

  function age(iso) {
    const hours = (Date.now() - new Date(iso)) / 3.6e6;
    if (isNaN(hours)) return "";
    return hours < 48 ? t("hours", { count: Math.max(0, Math.floor(hours)) })
      : t("days", { count: Math.floor(hours / 24) });
  }

  const isoDay = (date) => [date.getFullYear(), String(date.getMonth() + 1).padStart(2, "0"),
    String(date.getDate()).padStart(2, "0")].join("-");

  function setBusy(control, busy) {
    control.disabled = busy;
    control.setAttribute("aria-busy", String(busy));
  }

  function showError(message) {
    const banner = $(".error-banner");
    banner.textContent = message || "";
    banner.hidden = !message;
  }

  // -- talking to the server ----------------------------------------------------------------------
  const failure = (code, message) => Object.assign(new Error(message), { code });

  // One call; a 401 "session" ends the console and shows the sign-in screen.
  async function api(method, path, body) {
    const init = { method, headers: {}, credentials: "same-origin", cache: "no-store" };
    if (method === "POST") {
      init.headers["Content-Type"] = "application/json";
      if (S.csrf) init.headers["X-CSRF-Token"] = S.csrf;
      init.body = JSON.stringify(body || {});
    }
    const response = await fetch(path, init).catch(() => null);
    if (!response) throw failure("network", t("error"));
    const data = await response.json().catch(() => null);
    if (response.ok && data) return data;
    const code = (data && data.error) || "network";
    if (code === "session") {
      showSignin();
      throw failure(code, "");
    }
    throw failure(code, (data && data.message) || t("error"));
  }

  const query = (params) => new URLSearchParams(Object.entries(params)
    .filter(([, v]) => v !== "" && v !== null && v !== undefined)).toString();

  // -- sign-in ------------------------------------------------------------------------------------
  function showSignin() {
    stopLive();
    exitWall();
    S.csrf = "";
    $(".app").hidden = true;
    $(".signin").hidden = false;
    applyStrings();
    if (!signin) startSignin();
  }

  function stopSignin() {
    if (!signin) return;
    clearInterval(signin.poll);
    clearInterval(signin.tick);
    signin = null;
  }

  async function startSignin() {
    stopSignin();
    signin = { poll: null, tick: null, expires: 0 };
    const mine = signin;
    $("[data-testid=signin-new]").hidden = true;
    signinStatus(t("loading"));
    let data;
    try {
      data = await api("POST", "/console/api/signin");
    } catch (error) {
      signinStatus(error.message, true);
      $("[data-testid=signin-new]").hidden = false;
      return;
    }
    if (signin !== mine) return;
    if (data.strings) { // the sign-in screen's words, if the server sends them with the code
      Object.assign(S, { strings: data.strings, language: data.language || S.language });
      applyStrings();
    }
    const qr = $("[data-testid=signin-qr]"), link = $("[data-testid=signin-link]");
    qr.src = "data:image/svg+xml;base64," + base64(data.qr_svg || "");
    qr.hidden = !data.qr_svg;
    const href = /^https:\/\/t\.me\//.test(data.link || "") ? data.link : null;
    link.hidden = !href;
    if (href) link.href = href;
    // The same, typed: for a Telegram where links do not open the app (and the demo's).
    $("[data-testid=signin-command]").textContent = data.start || "";
    signin.expires = Date.now() + (data.expires_in || 300) * 1000;
    signinStatus(t("signin_waiting"));
    tickCountdown();
    signin.tick = setInterval(tickCountdown, 1000);
    signin.poll = setInterval(pollSignin, POLL_MS);
  }

  const base64 = (text) => btoa(Array.from(new TextEncoder().encode(text),
    (b) => String.fromCharCode(b)).join(""));

  function signinStatus(text, bad = false) {
    const el = $("[data-testid=signin-status]");
    el.textContent = text || "";
    el.classList.toggle("bad", bad);
  }

  function tickCountdown() {
    if (!signin) return;
    const left = Math.max(0, Math.round((signin.expires - Date.now()) / 1000));
    const time = `${Math.floor(left / 60)}:${String(left % 60).padStart(2, "0")}`;
    $("[data-testid=signin-countdown]").textContent = left ? t("signin_expires", { time }) : "";
    if (!left) signinOver(t("signin_expired"));
  }

  // The code can no longer be used (expired or refused): the person may ask for a new one.
  function signinOver(message) {
    stopSignin();
    $("[data-testid=signin-qr]").hidden = true;
    $("[data-testid=signin-link]").hidden = true;
    $("[data-testid=signin-command]").textContent = "";
    $("[data-testid=signin-countdown]").textContent = "";
    signinStatus(message, true);
    $("[data-testid=signin-new]").hidden = false;
  }

  async function pollSignin() {
    const mine = signin;
    let data;
    try {
      data = await api("GET", "/console/api/signin/status");
    } catch (_) {
      return; // a network blip: the next poll asks again
    }
    if (signin !== mine) return;
    if (data.state === "signed_in") {
      stopSignin();
      signinStatus(t("signin_done"));
      await start();
    } else if (data.state === "expired") signinOver(data.message || t("signin_expired"));
    else if (data.state === "refused") signinOver(data.message || t("error"));
  }

  async function signout() {
    try {
      await api("POST", "/console/api/signout");
    } catch (_) { /* signed out already, or offline: the sign-in screen either way */ }
    S.nodes.clear();
    showSignin();
  }

  // -- the console: who, the tree, the words ------------------------------------------------------
  async function start() {
    let me;
    try {
      me = await api("GET", "/console/api/me");
    } catch (error) {
      if (error.code !== "session") signinStatus(error.message, true);
      return;
    }
    applyMe(me);
    try {
      await loadTree();
    } catch (error) {
      if (error.code !== "session") showError(error.message);
      return;
    }
    stopSignin();
    $(".signin").hidden = true;
    $(".app").hidden = false;
    connectLive();
    route();
  }

  function applyMe(me) {
    Object.assign(S, { csrf: me.csrf, name: me.name || "", admin: !!me.admin,
      language: me.language || S.language, languages: me.languages || [],
      strings: me.strings || {}, roots: me.roots || [] });
    applyStrings();
  }

  async function loadTree() {
    const data = await api("GET", "/console/api/tree");
    S.nodes = new Map(data.nodes.map((n) => [n.id, n]));
    S.kids = new Map();
    for (const n of data.nodes) {
      if (!S.kids.has(n.parent_id)) S.kids.set(n.parent_id, []);
      S.kids.get(n.parent_id).push(n);
    }
  }

  const children = (id) => S.kids.get(id) || [];
  const topNodes = () => S.roots.filter((id) => S.nodes.has(id));

  // The node and its ancestors up to the person's root, root first.
  function pathTo(id) {
    const path = [];
    for (let n = S.nodes.get(id); n; n = S.nodes.get(n.parent_id)) {
      path.unshift(n);
      if (S.roots.includes(n.id)) break;
    }
    return path;
  }

  async function changeLanguage(select) {
    setBusy(select, true);
    try {
      applyMe(await api("POST", "/console/api/language", { language: select.value }));
      render();
    } catch (error) {
      select.value = S.language;
      if (error.code !== "session") showError(error.message);
    } finally {
      setBusy(select, false);
    }
  }

  function applyStrings() {
    document.documentElement.lang = tag();
    document.title = t("title") || "gridgate";
    for (const el of $$("[data-s]")) el.textContent = t(el.dataset.s);
    for (const el of $$("[data-s-label]")) {
      el.setAttribute("aria-label", t(el.dataset.sLabel));
      if (el.localName === "button") el.title = t(el.dataset.sLabel);
    }
    for (const el of $$("[data-s-placeholder]")) el.placeholder = t(el.dataset.sPlaceholder);
    const select = $(".language");
    select.replaceChildren(...S.languages.map((l) => h("option", { value: l.code, text: l.name })));
    select.value = S.language;
    select.hidden = S.languages.length < 2;
    $("[data-testid=user-name]").textContent = S.name;
    $("[data-testid=user-name]").title = S.name ? t("signed_in_as", { name: S.name }) : "";
    renderAgeOptions();
    renderLive();
  }

  // -- where we are: the address ------------------------------------------------------------------
  function go(view, id, replace = false) {
    const hash = `#${view}/${id}`;
    if (location.hash === hash) return render();
    if (replace) {
      history.replaceState(null, "", hash);
      route();
    } else location.hash = hash; // hashchange routes
  }

  function route() {
    if (!S.nodes.size) return;
    const [view, raw] = location.hash.slice(1).split("/");
    const id = Number(raw);
    if (view === "ticket" && id) {
      S.ticket = id;
      S.view = "ticket";
    } else {
      if (S.ticket) cameFromView = false;
      S.ticket = null;
      S.view = VIEWS.includes(view) ? view : "map";
      const node = S.nodes.has(id) ? id : (S.nodes.has(S.node) ? S.node : topNodes()[0]);
      if (node !== S.node) { // another place: the categories and statuses found there, anew
        Object.assign(S.queue, { offset: 0, category: "", status: "" });
        S.categories.clear();
        S.statuses.clear();
        S.grid = null;
      }
      S.node = node ?? null;
    }
    render();
  }

  // Shows the view of S.view and loads what it needs.
  function render() {
    for (const tab of $$(".tab")) {
      const on = tab.dataset.view === S.view;
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on || (S.view === "ticket" && tab.dataset.view === "queue") ? 0 : -1;
    }
    for (const view of VIEWS) $(`.view-${view}`).hidden = S.view !== view;
    $(".view-ticket").hidden = S.view !== "ticket";
    if (S.view === "ticket" && $(".view-ticket").dataset.ticketId !== String(S.ticket)) {
      clearTicket(); // nothing of the ticket shown before, should this one not come
    }
    renderBreadcrumb();
    load();
  }

  // Fetches the view on screen and draws it; quiet: a live refresh (the ticket page keeps the
  // results of what the person did on it).
  async function load(quiet = false) {
    const seq = ++loadSeq;
    const loaders = { map: loadMap, rates: loadRates, queue: loadQueue, ticket: loadTicket };
    if (S.node === null && S.view !== "ticket") return;
    try {
      const draw = await loaders[S.view](quiet);
      if (seq !== loadSeq) return;
      draw();
      showError("");
      markUpdated();
    } catch (error) {
      if (seq === loadSeq && error.code !== "session") showError(error.message);
    }
  }

  function renderBreadcrumb() {
    const current = S.view === "ticket" ? null : S.node;
    const path = S.node === null ? [] : pathTo(S.node);
    const list = $(".crumb-list");
    list.replaceChildren(...path.map((n) => h("li", null, n.id === current
      ? h("span", { class: "crumb current", "data-testid": "crumb", "data-node-id": n.id,
        "aria-current": "page", text: n.name })
      : h("button", { type: "button", class: "crumb", "data-testid": "crumb", "data-node-id": n.id,
        text: n.name, onclick: () => go(S.view === "ticket" ? "queue" : S.view, n.id) }))));
    const others = topNodes().filter((id) => id !== (path[0] && path[0].id));
    if (others.length) { // several subtrees: the others are one step away
      list.prepend(h("li", null, h("select", { class: "crumb-roots", "data-testid": "crumb-roots",
        "aria-label": t("breadcrumb"), onchange: (e) => go(S.view, Number(e.target.value)) },
      topNodes().map((id) => h("option", { value: id, text: S.nodes.get(id).name,
        selected: id === (path[0] && path[0].id) })))));
    }
    const below = S.node === null ? [] : children(S.node);
    const select = $(".crumb-children");
    select.hidden = !below.length || S.view === "ticket";
    select.replaceChildren(h("option", { value: "", text: t("below") + " …" }),
      ...below.map((n) => h("option", { value: n.id, text: n.name })));
  }

  // -- the map ------------------------------------------------------------------------------------
  async function loadMap() {
    const data = await api("GET", "/console/api/map?" + query({ node: S.node }));
    return () => {
      S.map = data;
      if (S.grid && !data.grids.some((g) => g.id === S.grid)) S.grid = null;
      drawMap();
      renderMapSide();
    };
  }

  // Fill class: calm, amber by how many are open, red if any is overdue.
  function gridClass(grid) {
    if (grid.overdue > 0) return "g-overdue";
    if (!grid.open) return "g-calm";
    return "g-open-" + (grid.open >= 7 ? 4 : grid.open >= 4 ? 3 : grid.open >= 2 ? 2 : 1);
  }

  // Equirectangular, with x shrunk by cos(latitude) so that squares look square, fitted to the
  // box in pixels (the labels' sizes are then pixels too).
  function projection(bbox, width, height, pad) {
    const [w, s, e, n] = bbox;
    const k = Math.cos(((s + n) / 2) * Math.PI / 180);
    const pw = Math.max((e - w) * k, 1e-9), ph = Math.max(n - s, 1e-9);
    const scale = Math.min((width - 2 * pad) / pw, (height - 2 * pad) / ph);
    const ox = (width - pw * scale) / 2, oy = (height - ph * scale) / 2;
    return ([lon, lat]) => [ox + (lon - w) * k * scale, oy + (n - lat) * scale];
  }

  function bboxOf(data) {
    if (Array.isArray(data.bbox) && data.bbox.length === 4) return data.bbox;
    const all = data.grids.flatMap((g) => g.rings.flat());
    const lons = all.map((p) => p[0]), lats = all.map((p) => p[1]);
    return [Math.min(...lons), Math.min(...lats), Math.max(...lons), Math.max(...lats)];
  }

  function drawMap() {
    const svg = $(".map"), data = S.map;
    if (!data || S.view !== "map") return;
    const empty = !data.grids.length;
    $(".map-empty").hidden = !empty;
    svg.replaceChildren();
    if (empty) return;
    const width = svg.clientWidth || 800, height = svg.clientHeight || 600;
    const big = S.wall;
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    const project = projection(bboxOf(data), width, height, big ? 32 : 24);
    const grids = h("svg:g", { class: "grids" }), labels = h("svg:g", { class: "labels" });
    const fontSize = big ? 15 : 12;
    for (const grid of data.grids) {
      const rings = grid.rings.map((ring) => ring.map(project));
      const d = rings.map((ring) => "M" + ring.map((p) => p[0].toFixed(1) + "," + p[1].toFixed(1))
        .join("L") + "Z").join("");
      const path = h("svg:path", { d, class: "grid " + gridClass(grid), "data-testid": "map-grid",
        "data-code": grid.code, "data-grid-id": grid.id, tabindex: 0, role: "button",
        "aria-pressed": String(grid.id === S.grid),
        "aria-label": `${grid.name}: ${t("col_open")} ${grid.open}, ${t("col_overdue")} ${grid.overdue}`,
        onclick: () => selectGrid(grid.id), onkeydown: (e) => activateOnKey(e, () => selectGrid(grid.id)) },
      h("svg:title", { text: `${grid.name} · ${t("col_open")} ${grid.open} · ${t("col_overdue")} ${grid.overdue}` }));
      grids.append(path);
      const label = gridLabel(grid, rings[0], fontSize);
      if (label) labels.append(label);
    }
    const points = h("svg:g", { class: "points" }, data.points.map((p) => {
      const [x, y] = project([p.lon, p.lat]);
      const open = () => openTicket(p.id);
      return h("svg:circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: big ? 7 : 5,
        class: "point" + (p.overdue ? " overdue" : ""), "data-testid": "map-point",
        "data-ticket-id": p.id, tabindex: 0, role: "link", "aria-label": p.number,
        onclick: open, onkeydown: (e) => activateOnKey(e, open) }, h("svg:title", { text: p.number }));
    }));
    svg.append(grids, labels, points);
    const selected = $(`.grid[data-grid-id="${S.grid}"]`, svg);
    if (selected) grids.append(selected); // on top, so its outline shows whole
  }

  // The grid's name at its centre, if it fits inside the grid's box.
  function gridLabel(grid, ring, fontSize) {
    const xs = ring.map((p) => p[0]), ys = ring.map((p) => p[1]);
    const width = Math.max(...xs) - Math.min(...xs), height = Math.max(...ys) - Math.min(...ys);
    const textWidth = [...grid.name].reduce((sum, c) => sum + (c.charCodeAt(0) > 0x2e80 ? 1 : 0.6), 0) * fontSize;
    if (textWidth > width - 8 || height < fontSize * 2.6) return null;
    const [cx, cy] = centroid(ring);
    return h("svg:text", { x: cx.toFixed(1), y: cy.toFixed(1), class: "grid-label",
      "font-size": fontSize, "text-anchor": "middle" },
    h("svg:tspan", { x: cx.toFixed(1), dy: "-0.2em", text: grid.name }),
    h("svg:tspan", { x: cx.toFixed(1), dy: "1.25em", class: "grid-count", text: grid.open
      ? `${t("col_open")} ${grid.open}${grid.overdue ? ` · ${t("col_overdue")} ${grid.overdue}` : ""}` : "" }));
  }

  function centroid(ring) {
    let area = 0, x = 0, y = 0;
    for (let i = 0; i < ring.length - 1; i++) {
      const [x0, y0] = ring[i], [x1, y1] = ring[i + 1];
      const cross = x0 * y1 - x1 * y0;
      area += cross;
      x += (x0 + x1) * cross;
      y += (y0 + y1) * cross;
    }
    if (Math.abs(area) < 1e-6) return [ring[0][0], ring[0][1]];
    return [x / (3 * area), y / (3 * area)];
  }

  function activateOnKey(event, action) {
    if (event.key !== "Enter" && event.key !== " ") return;
    event.preventDefault();
    action();
  }

  function selectGrid(id) {
    S.grid = S.grid === id ? null : id;
    drawMap();
    renderMapSide();
  }

  function renderMapSide() {
    const data = S.map, node = S.nodes.get(S.node);
    if (!data) return;
    const sum = (list, key) => list.reduce((total, g) => total + (g[key] || 0), 0);
    $(".summary-name").textContent = node ? node.name : "";
    $(".sum-open").textContent = number(sum(data.grids, "open"));
    $(".sum-overdue").textContent = number(sum(data.grids, "overdue"));
    $(".sum-grids").textContent = number(data.grids.length);
    const grid = data.grids.find((g) => g.id === S.grid);
    $(".grid-info").hidden = !grid;
    if (grid) {
      $(".grid-name").textContent = grid.name;
      $(".grid-open").textContent = number(grid.open);
      $(".grid-overdue").textContent = number(grid.overdue);
      $("[data-testid=grid-drill]").hidden = !S.nodes.has(grid.community_id) || grid.community_id === S.node;
    }
    // Each child with the open and overdue tickets of the grids under it.
    const list = children(S.node).map((child) => {
      const under = descendants(child.id);
      const mine = data.grids.filter((g) => under.has(g.id));
      return { child, open: sum(mine, "open"), overdue: sum(mine, "overdue") };
    });
    $(".children-card").hidden = !list.length;
    $(".children").replaceChildren(...list.map(({ child, open, overdue }) => h("li", null,
      h("button", { type: "button", class: "child", "data-testid": "child", "data-node-id": child.id,
        onclick: () => go("map", child.id) },
      h("span", { class: "child-name", text: child.name }),
      h("span", { class: "child-counts" },
        h("span", { class: "count", title: t("col_open"), text: number(open) }),
        overdue ? h("span", { class: "count bad", title: t("col_overdue"), text: number(overdue) }) : null)))));
  }

  function descendants(id) {
    const out = new Set([id]), todo = [id];
    while (todo.length) {
      for (const n of children(todo.pop())) {
        if (!out.has(n.id)) todo.push(n.id);
        out.add(n.id);
      }
    }
    return out;
  }

  // -- the rates ----------------------------------------------------------------------------------
  function periodParams() {
    const params = { node: S.node, period: S.period };
    if (S.period === "range") Object.assign(params, { from: S.from, to: S.to });
    return params;
  }

  async function loadRates() {
    if (S.period === "range" && !(S.from && S.to && S.from <= S.to)) return () => {};
    const [rates, ...trends] = await Promise.all([
      api("GET", "/console/api/rates?" + query(periodParams())),
      ...RATES.map((rate) => api("GET", "/console/api/trend?" + query({ node: S.node, rate, days: 30 }))),
    ]);
    return () => {
      renderRates(rates);
      renderTrends(trends.map((data) => data.points || []), rates.explain || {});
    };
  }

  function renderRates(data) {
    const node = S.nodes.get(S.node);
    $(".rates-title").textContent = node ? node.name : "";
    $(".period-label").textContent = (data.period && data.period.label) || "";
    const from = S.period === "range" ? S.from : dayOf(data.period && data.period.start, false);
    const to = S.period === "range" ? S.to : dayOf(data.period && data.period.end, true);
    $("[data-testid=export]").href = "/console/api/export?" + query({ node: S.node, from, to });
    $(".rates tbody").replaceChildren(...data.rows.map((row) => {
      const kind = row.total ? "total" : row.node ? "child" : "held";
      const name = row.total ? t("row_total", { name: row.node.name })
        : row.node ? h("button", { type: "button", class: "link", "data-testid": "rates-drill",
          "data-node-id": row.node.id, text: row.node.name, onclick: () => go("rates", row.node.id) })
          : t("row_held");
      return h("tr", { class: "row-" + kind, "data-testid": "rates-row", "data-row": kind,
        "data-node-id": row.node ? row.node.id : "" },
      h("th", { scope: "row" }, name),
      h("td", { class: "num", text: number(row.new) }),
      h("td", { class: "num", text: number(row.open) }),
      h("td", { class: "num" + (row.overdue ? " bad" : ""), text: number(row.overdue) }),
      RATES.map((rate) => rateCell(row[rate], rate)));
    }));
  }

  // A period's day for the export: an exclusive end (midnight after the last day) gives its eve.
  function dayOf(iso, end) {
    if (!iso) return "";
    if (iso.length <= 10) return iso;
    const date = new Date(new Date(iso).getTime() - (end ? 1 : 0));
    return isNaN(date) ? "" : isoDay(date);
  }

  function rateCell(value, rate) {
    const v = value || {};
    const bar = h("span", { class: "bar" }, h("span", { class: "bar-fill" }));
    if (typeof v.rate === "number") bar.firstChild.style.width = Math.round(v.rate * 100) + "%"; // CSSOM: allowed by the CSP
    return h("td", { class: "rate", "data-rate": rate },
      h("span", { class: "rate-value", text: percent(v.rate) }),
      h("span", { class: "rate-count", text: v.den ? `${number(v.num)}/${number(v.den)}` : "0/0" }),
      bar);
  }

  function renderTrends(series, explain) {
    $(".trends").replaceChildren(...RATES.map((rate, i) => {
      const points = series[i], last = [...points].reverse().find((p) => typeof p.rate === "number");
      return h("figure", { class: "card trend", "data-testid": "trend-" + rate, "data-rate": rate },
        h("figcaption", null,
          h("span", { class: "trend-title" }, h("sup", { text: String(i + 1) }),
            t("trend_title", { rate: t("rate_" + rate) })),
          h("span", { class: "trend-last", "data-testid": "trend-last", text: last ? percent(last.rate) : "" })),
        h("p", { class: "explain", id: "explain-" + rate, "data-testid": "explain-" + rate,
          text: explain[rate] || "" }),
        trendChart(points, t("rate_" + rate)));
    }));
  }

  // A line of the daily rate over faint bars of the day's count (its denominator); days without
  // any ticket to count break the line. The y axis starts at 50 % or lower, labelled.
  function trendChart(points, label) {
    const W = 560, H = 170, L = 44, R = 12, T = 10, B = 24;
    const svg = h("svg:svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": label });
    const rates = points.map((p) => p.rate).filter((r) => typeof r === "number");
    if (!rates.length) {
      svg.append(h("svg:text", { x: W / 2, y: H / 2, "text-anchor": "middle", class: "axis", text: t("no_data") }));
      return svg;
    }
    const step = Math.min(...rates) >= 0.5 ? 0.1 : 0.2;
    const low = Math.min(0.5, Math.floor(Math.min(...rates) / step) * step);
    const x = (i) => L + (points.length > 1 ? i * (W - L - R) / (points.length - 1) : (W - L - R) / 2);
    const y = (r) => T + (1 - (r - low) / (1 - low)) * (H - T - B);
    const maxDen = Math.max(1, ...points.map((p) => p.den || 0));
    const barWidth = Math.max(2, (W - L - R) / points.length - 3);
    for (let r = low; r <= 1.0001; r += step) {
      svg.append(h("svg:line", { x1: L, x2: W - R, y1: y(r), y2: y(r), class: "gridline" }),
        h("svg:text", { x: L - 6, y: y(r) + 4, "text-anchor": "end", class: "axis",
          text: Math.round(r * 100) + "%" }));
    }
    points.forEach((p, i) => {
      if (!p.den) return;
      const height = (p.den / maxDen) * (H - T - B) * 0.35;
      svg.append(h("svg:rect", { x: x(i) - barWidth / 2, y: H - B - height, width: barWidth, height,
        class: "volume" }));
    });
    let d = "", pen = false;
    points.forEach((p, i) => {
      if (typeof p.rate !== "number") { pen = false; return; }
      d += (pen ? "L" : "M") + x(i).toFixed(1) + "," + y(p.rate).toFixed(1);
      pen = true;
    });
    svg.append(h("svg:path", { d, class: "line" }));
    points.forEach((p, i) => {
      if (typeof p.rate !== "number") return;
      svg.append(h("svg:circle", { cx: x(i), cy: y(p.rate), r: 2.5, class: "dot" },
        h("svg:title", { text: `${p.day}: ${percent(p.rate)} (${p.num}/${p.den})` })));
    });
    for (const i of [0, Math.floor((points.length - 1) / 2), points.length - 1]) {
      svg.append(h("svg:text", { x: x(i), y: H - 6, "text-anchor": i ? (i === points.length - 1 ? "end" : "middle") : "start",
        class: "axis", text: (points[i].day || "").slice(5) }));
    }
    return svg;
  }

  // -- the queue ----------------------------------------------------------------------------------
  async function loadQueue() {
    const q = S.queue;
    const data = await api("GET", "/console/api/queue?" + query({ node: S.node, view: q.view,
      category: q.category, status: q.status, min_age_hours: q.age, q: q.q, offset: q.offset, limit: PAGE }));
    return () => renderQueue(data);
  }

  function renderQueue(data) {
    const q = S.queue;
    q.total = data.total || 0;
    for (const ticket of data.tickets) {
      if (ticket.category) S.categories.set(ticket.category, ticket.category_name || ticket.category);
      if (ticket.status) S.statuses.set(ticket.status, ticket.status_name || ticket.status);
    }
    for (const button of $$("[data-queue-view]")) {
      button.setAttribute("aria-pressed", String(button.dataset.queueView === q.view));
    }
    fillFilter($(".f-category"), byName(S.categories), q.category);
    fillFilter($(".f-status"), byName(S.statuses), q.status);
    $(".queue tbody").replaceChildren(...data.tickets.map(queueRow));
    $(".queue-empty").hidden = data.tickets.length > 0;
    const first = q.total ? q.offset + 1 : 0, last = Math.min(q.offset + PAGE, q.total);
    $(".page-info").textContent = t("page_info", { from: first, to: last, total: q.total });
    $("[data-testid=queue-prev]").disabled = q.offset <= 0;
    $("[data-testid=queue-next]").disabled = q.offset + PAGE >= q.total;
  }

  // A filter's options: "any", then [value, label] pairs.
  function fillFilter(select, pairs, value) {
    select.replaceChildren(h("option", { value: "", text: t("filter_any") }),
      ...[...pairs].map(([code, name]) => h("option", { value: code, text: name })));
    select.value = value;
  }

  const byName = (seen) => [...seen].sort((a, b) => a[1].localeCompare(b[1], tag()));
  const renderAgeOptions = () => fillFilter($(".f-age"), AGES.map((hours) =>
    [hours, hours < 48 ? t("hours", { count: hours }) : t("days", { count: hours / 24 })]), S.queue.age);

  function queueRow(ticket) {
    const flags = h("td", { class: "flags" },
      ticket.overdue && h("span", { class: "badge bad", text: t("flag_overdue") }),
      ticket.urgent && h("span", { class: "badge warn", text: t("flag_urgent") }),
      ticket.reopen_count > 0 && h("span", { class: "badge", text: t("flag_reopened", { count: ticket.reopen_count }) }));
    return h("tr", { "data-testid": "queue-row", "data-ticket-id": ticket.id,
      class: ticket.overdue ? "overdue" : null, onclick: (e) => {
        if (!e.target.closest("a")) openTicket(ticket.id);
      } },
    h("td", null, h("a", { href: `#ticket/${ticket.id}`, class: "number", "data-testid": "queue-link",
      onclick: () => { cameFromView = true; }, text: ticket.number })),
    h("td", { text: ticket.category_name || "" }),
    h("td", { text: ticket.status_name || "" }),
    h("td", { text: (ticket.node && ticket.node.name) || "" }),
    h("td", { title: formatTime(ticket.created_at) }, h("span", { text: age(ticket.created_at) })),
    h("td", { class: ticket.overdue ? "bad" : null, text: formatTime(ticket.deadline_at) }),
    flags);
  }

  function setQueue(changes) {
    Object.assign(S.queue, { offset: 0 }, changes);
    if (S.view === "queue") load();
  }

  // -- the ticket page ----------------------------------------------------------------------------
  function openTicket(id) {
    cameFromView = true;
    location.hash = `#ticket/${id}`;
  }

  async function loadTicket(quiet) {
    const data = await api("GET", `/console/api/ticket/${S.ticket}`);
    return () => renderTicket(data, quiet);
  }

  function renderTicket(data, quiet) {
    const ticket = data.ticket;
    const shownId = $(".view-ticket").dataset.ticketId;
    if (!quiet || shownId !== String(ticket.id)) { // another ticket: its own actions, none done yet
      $(".nudge-text").value = "";
      for (const el of $$(".view-ticket .result")) el.hidden = true;
    }
    $(".view-ticket").dataset.ticketId = ticket.id;
    $(".view-ticket .actions").hidden = false;
    $(".ticket-number").textContent = ticket.number;
    $(".ticket-status").textContent = ticket.status_name || "";
    const fields = [ // the number and the status are in the heading
      ["description", ticket.description],
      ["kind", t("kind_" + ticket.kind) || ticket.kind], ["category", ticket.category_name],
      ["created", formatTime(ticket.created_at)], ["deadline", formatTime(ticket.deadline_at)],
      ["holder", ticket.holder], ["reporter", ticket.reporter],
      ["path", ticket.path], ["address", ticket.address],
    ];
    $(".fields").replaceChildren(...fields.filter(([, value]) => value).map(([key, value]) =>
      h("div", { class: "field field-" + key },
        h("dt", { text: t("field_" + key) }),
        h("dd", { "data-testid": "ticket-" + key, text: value }))));
    $(".history").replaceChildren(...(data.history || []).map((item) => h("li", null,
      h("time", { datetime: item.at, text: formatTime(item.at) }),
      h("span", { text: item.text }))));
    $("[data-testid=escalate]").hidden = !data.can_escalate;
    $(".escalate-no").hidden = !!data.can_escalate;
  }

  function clearTicket() {
    delete $(".view-ticket").dataset.ticketId;
    for (const el of $$(".ticket-number, .ticket-status, .fields, .history")) el.replaceChildren();
    $(".view-ticket .actions").hidden = true;
  }

  function showResult(el, text, bad) {
    el.textContent = text;
    el.classList.toggle("bad", !!bad);
    el.hidden = !text;
  }

  async function nudge(button) {
    const result = $(".nudge-result"), text = $(".nudge-text").value.trim();
    setBusy(button, true);
    try {
      await api("POST", `/console/api/ticket/${S.ticket}/nudge`, text ? { text } : {});
      showResult(result, t("nudge_sent"));
      $(".nudge-text").value = "";
    } catch (error) {
      if (error.code !== "session") showResult(result, error.message, true);
    } finally {
      setBusy(button, false);
    }
  }

  async function escalate(button) {
    const dialog = $(".confirm-dialog");
    dialog.returnValue = "";
    dialog.showModal();
    await new Promise((resolve) => dialog.addEventListener("close", resolve, { once: true }));
    if (dialog.returnValue !== "ok") return;
    const result = $(".escalate-result");
    setBusy(button, true);
    try {
      const data = await api("POST", `/console/api/ticket/${S.ticket}/escalate`);
      showResult(result, data.message || "");
      load(true); // its holder and status have changed
    } catch (error) {
      if (error.code !== "session") showResult(result, error.message, true);
    } finally {
      setBusy(button, false);
    }
  }

  function back() {
    if (cameFromView) history.back();
    else go("queue", S.node ?? topNodes()[0]);
  }

  // -- live ---------------------------------------------------------------------------------------
  function connectLive() {
    stopLive();
    events = new EventSource("/console/api/live");
    events.addEventListener("open", renderLive);
    events.addEventListener("changed", scheduleRefresh);
    events.addEventListener("error", () => {
      renderLive();
      // EventSource reconnects by itself unless the server refused (closed): then the session
      // may have ended, which /me tells.
      if (events && events.readyState === EventSource.CLOSED) {
        stopLive();
        setTimeout(checkSession, 5000);
      }
    });
    renderLive();
  }

  async function checkSession() {
    if ($(".app").hidden) return;
    try {
      await api("GET", "/console/api/me");
      connectLive();
      load(true);
    } catch (error) {
      if (error.code !== "session") setTimeout(checkSession, 10000);
    }
  }

  function stopLive() {
    if (events) events.close();
    events = null;
    clearTimeout(refreshTimer);
    renderLive();
  }

  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => load(true), REFRESH_MS);
  }

  function renderLive() {
    const on = !!events && events.readyState === EventSource.OPEN;
    const el = $("[data-testid=live]");
    el.dataset.state = on ? "on" : "off";
    $(".live-word").textContent = on ? t("live") : t("live_off");
  }

  function markUpdated() {
    const time = new Date().toLocaleTimeString(tag(), { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    $("[data-testid=live-time]").textContent = t("updated", { time });
  }

  // -- the wall display ---------------------------------------------------------------------------
  function enterWall() {
    S.wall = true;
    document.body.classList.add("wall");
    const root = document.documentElement;
    if (root.requestFullscreen && !document.fullscreenElement) {
      root.requestFullscreen().then(() => { S.fullscreen = true; }).catch(() => { /* not allowed here */ });
    }
    if (S.view === "ticket") go("map", S.node);
    restartRotation();
    setTimeout(drawMap, 50); // the map's box is larger now
  }

  function exitWall() {
    if (!S.wall) return;
    S.wall = false;
    S.fullscreen = false;
    document.body.classList.remove("wall");
    clearInterval(rotateTimer);
    if (document.fullscreenElement && document.exitFullscreen) document.exitFullscreen().catch(() => {});
    setTimeout(drawMap, 50);
  }

  // The views take turns; a thin bar under the tabs fills until the next one.
  function restartRotation() {
    clearInterval(rotateTimer);
    const bar = $(".rotation-bar");
    const restartBar = () => {
      bar.classList.remove("running");
      void bar.offsetWidth; // a reflow, so that the animation starts again
      bar.classList.add("running");
    };
    restartBar();
    rotateTimer = setInterval(() => {
      restartBar();
      go(VIEWS[(VIEWS.indexOf(S.view) + 1) % VIEWS.length], S.node, true);
    }, ROTATE_MS);
  }

  // -- wiring -------------------------------------------------------------------------------------
  function onPeriodChange() {
    S.period = $(".period-select").value;
    $(".range").hidden = S.period !== "range";
    if (S.period === "range" && !S.from) {
      const today = new Date();
      S.to = isoDay(today);
      S.from = isoDay(new Date(today.getFullYear(), today.getMonth(), 1));
      $(".period-from").value = S.from;
      $(".period-to").value = S.to;
    }
    if (S.view === "rates") load();
  }

  function onRangeChange() {
    S.from = $(".period-from").value;
    S.to = $(".period-to").value;
    const valid = S.from && S.to && S.from <= S.to;
    $(".period-from").setAttribute("aria-invalid", String(!valid));
    $(".period-to").setAttribute("aria-invalid", String(!valid));
    if (valid && S.view === "rates") load();
  }

  const actions = {
    "signin-new": startSignin, signout, wall: enterWall, "wall-exit": exitWall,
    "grid-close": () => selectGrid(S.grid),
    "grid-queue": () => go("queue", S.grid),
    "grid-drill": () => {
      const grid = S.map && S.map.grids.find((g) => g.id === S.grid);
      if (grid) go("map", grid.community_id);
    },
    prev: () => setQueue({ offset: Math.max(0, S.queue.offset - PAGE) }),
    next: () => setQueue({ offset: S.queue.offset + PAGE }),
    back, nudge, escalate,
  };

  function wire() {
    document.addEventListener("click", (event) => {
      const button = event.target.closest("[data-action]");
      if (button && actions[button.dataset.action]) actions[button.dataset.action](button);
      const tab = event.target.closest(".tab");
      if (tab) go(tab.dataset.view, S.node);
      const view = event.target.closest("[data-queue-view]");
      if (view) setQueue({ view: view.dataset.queueView });
    });
    $(".tabs").addEventListener("keydown", (event) => { // arrows move between the tabs
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (!step || !event.target.matches(".tab")) return;
      const tabs = $$(".tab"), next = tabs[(tabs.indexOf(event.target) + step + tabs.length) % tabs.length];
      next.focus();
      go(next.dataset.view, S.node);
    });
    $(".language").addEventListener("change", (e) => changeLanguage(e.target));
    $(".period-select").addEventListener("change", onPeriodChange);
    $(".period-from").addEventListener("change", onRangeChange);
    $(".period-to").addEventListener("change", onRangeChange);
    $(".crumb-children").addEventListener("change", (e) => {
      if (e.target.value) go(S.view, Number(e.target.value));
    });
    $(".f-category").addEventListener("change", (e) => setQueue({ category: e.target.value }));
    $(".f-status").addEventListener("change", (e) => setQueue({ status: e.target.value }));
    $(".f-age").addEventListener("change", (e) => setQueue({ age: e.target.value }));
    $(".f-search").addEventListener("input", (e) => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(() => setQueue({ q: e.target.value.trim() }), 350);
    });
    window.addEventListener("hashchange", route);
    let resizeTimer = null;
    window.addEventListener("resize", () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(drawMap, 150);
    });
    document.addEventListener("fullscreenchange", () => {
      // Esc (or the browser) left full screen: the wall display ends with it.
      if (!document.fullscreenElement && S.wall && S.fullscreen) exitWall();
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && S.wall) exitWall();
    });
  }

  wire();
  applyStrings();
  start().then(() => {
    if ($(".app").hidden && !signin) showSignin();
  });
})();
