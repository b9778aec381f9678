// frame.js: the bootstrap of /ui/frame.html, the document every HTML or
// Plotly output of the console page is shown in (outputs.js). The page
// frames it with sandbox="allow-scripts" and no allow-same-origin, and the
// server sends it with a CSP of its own (sandbox, scripts allowed, no
// network but this server's files): the output's scripts run, in an opaque
// origin that can read nothing of the console (its token, its API) and
// cannot navigate the page. It asks its parent for the document to show,
// takes it from the parent only, and writes it over itself.
(function () {
  'use strict';
  var written = false;
  window.addEventListener('message', function (e) {
    if (written || e.source !== window.parent) return;
    var d = e.data;
    if (!d || d.type !== 'ov-write' || typeof d.html !== 'string') return;
    written = true;
    document.open();
    document.write(d.html);
    document.close();
  });
  window.parent.postMessage({ type: 'ov-ready' }, '*');
})();
