// Runs the tracker script under node with a small fake browser and prints
// what it sent. Used by tracker_node_test.go; reads one JSON scenario on stdin:
//
//   {"file": "/abs/fjord.js", "href": "https://example.com/a", "referrer": "",
//    "src": "https://fjord.test/js/fjord.js", "attrs": {"data-domain": "x"},
//    "noScript": false, "webdriver": false, "prerendering": false,
//    "stub": false, "before": [["event", "Name", {}]], "loadTwice": false,
//    "responses": {"URL": ["reject", 503, 202]},   // per URL, default 202
//    "steps": [{"push": "/b"}, {"replace": "/c"}, {"pop": "/a"}, {"hash": "#x"},
//              {"call": ["event", "Signup", {"props": {"plan": "pro"}}]},
//              {"click": "URL"}, {"auxclick": "URL", "button": 1},
//              {"clickText": true}, {"activate": true}]}
//
// and prints {"requests": [{"step", "url", "init", "body"}], "console": [],
// "errors": []}; step is -1 for requests sent while loading.
'use strict';
const fs = require('fs');
const vm = require('vm');

const cfg = JSON.parse(fs.readFileSync(0, 'utf8'));
const out = { requests: [], console: [], errors: [] };
let step = -1;

process.on('unhandledRejection', (e) => out.errors.push('unhandled rejection: ' + String(e)));

function target() {
  const ls = {};
  return {
    addEventListener(type, fn, opts) {
      (ls[type] = ls[type] || []).push({ fn, once: !!(opts && opts.once) });
    },
    removeEventListener(type, fn) {
      ls[type] = (ls[type] || []).filter((l) => l.fn !== fn);
    },
    fire(type, ev) {
      for (const l of (ls[type] || []).slice()) {
        if (l.once) this.removeEventListener(type, l.fn);
        l.fn(Object.assign({ type }, ev));
      }
    },
  };
}

let cur = new URL(cfg.href);
const location = {};
for (const k of ['href', 'protocol', 'host', 'hostname', 'port', 'pathname', 'search', 'hash', 'origin']) {
  Object.defineProperty(location, k, { get: () => cur[k], enumerable: true });
}

const history = {
  pushState(state, title, url) { if (url != null) cur = new URL(url, cur); },
  replaceState(state, title, url) { if (url != null) cur = new URL(url, cur); },
};

const scriptEl = {
  src: cfg.src || '',
  getAttribute(n) { const a = cfg.attrs || {}; return Object.prototype.hasOwnProperty.call(a, n) ? String(a[n]) : null; },
};

const doc = Object.assign(target(), {
  currentScript: cfg.noScript ? null : scriptEl,
  referrer: cfg.referrer || '',
  prerendering: !!cfg.prerendering,
  querySelector() { return null; },
});

const win = target();
const responses = cfg.responses || {};

const sandbox = {
  document: doc,
  location,
  history,
  navigator: { webdriver: !!cfg.webdriver, userAgent: 'harness' },
  crypto: globalThis.crypto,
  URL,
  console: new Proxy({}, { get: (_, k) => (...a) => out.console.push(k + ': ' + a.join(' ')) }),
  addEventListener: win.addEventListener,
  removeEventListener: win.removeEventListener,
  fetch(url, init) {
    out.requests.push({ step, url: String(url), init: JSON.parse(JSON.stringify(init)), body: JSON.parse(init.body) });
    const q = responses[url] || [];
    const r = q.length ? q.shift() : 202;
    if (r === 'reject') return Promise.reject(new TypeError('Failed to fetch'));
    return Promise.resolve({ status: r, ok: r >= 200 && r < 300 });
  },
};
sandbox.window = sandbox;
const ctx = vm.createContext(sandbox);

function anchor(href) {
  const u = new URL(href, cur);
  const a = { href: u.href, host: u.host, hostname: u.hostname, pathname: u.pathname, protocol: u.protocol };
  a.closest = (sel) => (sel === 'a[href]' ? a : null);
  return a;
}

const settle = () => new Promise((r) => setImmediate(r));

(async () => {
  try {
    const src = fs.readFileSync(cfg.file, 'utf8');
    if (cfg.stub) {
      vm.runInContext('window.fjord=window.fjord||function(){(window.fjord.q=window.fjord.q||[]).push(arguments)}', ctx);
      for (const args of cfg.before || []) sandbox.fjord(...args);
    }
    vm.runInContext(src, ctx, { filename: cfg.file });
    if (cfg.loadTwice) vm.runInContext(src, ctx, { filename: cfg.file });
    await settle();
    for (const s of cfg.steps || []) {
      step++;
      if (s.push != null) history.pushState(null, '', s.push);
      if (s.replace != null) history.replaceState(null, '', s.replace);
      if (s.pop != null) { cur = new URL(s.pop, cur); win.fire('popstate', {}); }
      if (s.hash != null) { cur.hash = s.hash; win.fire('hashchange', {}); }
      if (s.call) sandbox.fjord(...s.call);
      if (s.click) doc.fire('click', { button: 0, target: anchor(s.click) });
      if (s.auxclick) doc.fire('auxclick', { button: s.button, target: anchor(s.auxclick) });
      if (s.clickText) doc.fire('click', { button: 0, target: { closest: () => null } });
      if (s.activate) { doc.prerendering = false; doc.fire('prerenderingchange', {}); }
      await settle();
      await settle();
    }
  } catch (e) {
    out.errors.push(String(e && e.stack || e));
  }
  await settle();
  process.stdout.write(JSON.stringify(out));
})();
