// What the bot's web pages (the web chat, the console) share in the browser, loaded before each
// page's own script: h(tag, attrs, ...children) makes an element ("svg:" names an SVG one).
// Attributes "text" (set as text, never as HTML) and "on…" (listeners) are special; null,
// undefined and false leave an attribute or a child out.
"use strict";

window.ggDom = Object.freeze((() => {
  const SVG_NS = "http://www.w3.org/2000/svg";

  function h(tag, attrs, ...children) {
    const svg = tag.startsWith("svg:");
    const el = svg ? document.createElementNS(SVG_NS, tag.slice(4)) : document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") el.textContent = value;
      else if (key.startsWith("on") && typeof value === "function") {
        el.addEventListener(key.slice(2), value);
      } else el.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined && child !== false) el.append(child);
    }
    return el;
  }

  return { h };
})());
