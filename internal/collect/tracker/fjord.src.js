/*
 * Fjord tracker: readable source. Served file: fjord.js, a hand-minified copy
 * of this one; edit both together (the tests run the same checks on both, and
 * TestGzipSize keeps fjord.js at or under 1536 bytes gzipped).
 *
 * No cookies, no localStorage/sessionStorage, no fingerprinting.
 *
 * Embed (the second line is optional; it queues calls made before the script
 * has loaded):
 *
 *   <script defer src="https://HOST/js/fjord.js" data-domain="example.com"></script>
 *   <script>window.fjord = window.fjord || function () { (window.fjord.q = window.fjord.q || []).push(arguments) }</script>
 *
 * Custom events:
 *
 *   fjord('event', 'Signup', {props: {plan: 'pro'}})
 *   fjord('event', 'Scrolled', {interactive: false})   // does not count as engagement
 *
 * Options (data attributes on the script tag; a flag is on when present and
 * not "false"):
 *
 *   data-domain="example.com"   site domain (default: location.hostname)
 *   data-api="URL,URL"          collector endpoints, tried in order
 *                               (default: the script's origin + /api/event)
 *   data-hash                   hash-based routing: hash changes are
 *                               pageviews and the URL keeps its hash
 *   data-outbound               clicks on links to other hosts:
 *                               event "Outbound Link: Click", prop url
 *   data-downloads              clicks on links to common file types:
 *                               event "File Download", prop url (no query)
 *   data-download-ext="pdf,zip" replaces the list of file extensions
 *   data-allow-local            count on localhost, 127.x.x.x, [::1], file:
 *   data-allow-automation       count when navigator.webdriver is true
 *
 * Payload, POSTed as text/plain (a CORS simple request, no preflight):
 *
 *   {"name":"pageview","url":"https://example.com/a?b=c","domain":"example.com",
 *    "referrer":"https://ref.example/"|null,"props":{...},"id":"<32 hex>",
 *    "interactive":false}
 *
 * props is left out when empty, interactive unless false. The id is random
 * per event and the same on every endpoint tried, so the collectors can count
 * the event once. An endpoint is given up for the next one on a network error,
 * 429 or 5xx; any other answer is final. After the last one, silence.
 * The collector must answer with Access-Control-Allow-Origin (e.g. *): without
 * it the browser hides the status and the script sees a network error.
 */
!function (w, d, l) {
  'use strict';
  if ((w.fjord || 0).l) return; // included twice
  var s = d.currentScript || d.querySelector('script[src*="fjord"]'),
    attr = k => s && s.getAttribute('data-' + k),
    flag = k => (k = attr(k)) != null && k != 'false',
    hash = flag('hash'),
    out = flag('outbound'),
    ext = attr('download-ext'),
    dl = flag('downloads') && RegExp('\\.(' + (ext ? ext.split(',').map(x => x.trim().replace(/^\./, '').replace(/\W/g, '\\$&')).join('|') :
      'pdf|docx?|xlsx?|pptx?|pps|od[tsp]|txt|rtf|csv|key|epub|exe|msi|dmg|pkg|deb|rpm|apk|iso|zip|7z|rar|t?gz|bz2|xz|tar|mp3|wav|wma|midi?|flac|avi|mov|mp4|mpe?g|wmv|webm') + ')$', 'i'),
    domain = attr('domain') || l.hostname,
    api = (attr('api') || (s && s.src ? new URL(s.src).origin : '') + '/api/event')
      .split(',').map(u => u.trim()).filter(u => u),
    off = !flag('allow-local') && (/^(.+\.)?localhost$|^127(\.\d+){3}$|^\[::1\]$/.test(l.hostname) || l.protocol == 'file:') ||
      !flag('allow-automation') && !!(w.navigator.webdriver || w._phantom || w.__nightmare || w.Cypress),
    last;

  // POST to the endpoints in order; next one on a network error, 429 or 5xx.
  function post(body, i) {
    api[i] && w.fetch(api[i], {method: 'POST', body, keepalive: true, headers: {'Content-Type': 'text/plain'}})
      .then(r => { if (r.status == 429 || r.status > 499) throw 0 })
      .catch(() => post(body, i + 1));
  }

  function send(name, o) {
    if (off || !name) return;
    o = o || {};
    var p = {name, url: hash ? l.href : l.href.split('#')[0], domain, referrer: d.referrer || null};
    if (o.props && Object.keys(o.props).length) p.props = o.props;
    p.id = Array.from(w.crypto.getRandomValues(new Uint8Array(16)), b => (b + 256).toString(16).slice(1)).join('');
    if (o.interactive === false) p.interactive = false;
    post(JSON.stringify(p), 0);
  }

  function page() {
    var k = l.pathname + (hash ? l.hash : '');
    if (k != last) { last = k; send('pageview') }
  }

  function click(e) {
    var a = e.target && e.target.closest && e.target.closest('a[href]');
    if (!a || e.type == 'auxclick' && e.button != 1) return;
    if (dl && dl.test(a.pathname)) send('File Download', {props: {url: a.href.split(/[?#]/)[0]}});
    else if (out && a.host && a.host != l.host) send('Outbound Link: Click', {props: {url: a.href}});
  }

  ['pushState', 'replaceState'].forEach(k => {
    var f = w.history[k];
    w.history[k] = function () { var r = f.apply(this, arguments); page(); return r };
  });
  w.addEventListener('popstate', page);
  hash && w.addEventListener('hashchange', page);
  if (out || dl) { d.addEventListener('click', click); d.addEventListener('auxclick', click) }

  var q = (w.fjord || 0).q || [];
  w.fjord = (t, n, o) => { t == 'event' && send(n, o) };
  w.fjord.l = 1;
  d.prerendering ? d.addEventListener('prerenderingchange', page, {once: true}) : page();
  q.forEach(a => w.fjord.apply(w, a));
}(window, document, location);
