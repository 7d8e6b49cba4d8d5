// Kairos portal pop-ups, embedded by the operator's portal on any page:
//
//   <script src="https://kairos.example/portal.js" data-token="kps1..."></script>
//
// or, from the page's own code once the script is loaded:
//
//   Kairos.portal({ token, base: 'https://kairos.example', lang: 'zh-CN', trigger: 'login' })
//
// A classic script so any page can include it; the widget itself is an ES module loaded
// from the same server (`/web/widget.js`).
(function () {
  var script = document.currentScript;
  var origin = script && script.src ? new URL(script.src, location.href).origin : '';

  function portal(opts) {
    opts = opts || {};
    var base = String(opts.base || origin).replace(/\/+$/, '');
    return import(base + '/web/widget.js').then(function (m) {
      return m.mount(Object.assign({}, opts, { base: base }));
    });
  }

  window.Kairos = window.Kairos || {};
  window.Kairos.portal = portal;

  if (script && script.dataset.token) {
    portal({
      token: script.dataset.token,
      base: script.dataset.base || origin,
      lang: script.dataset.lang,
      trigger: script.dataset.trigger,
    });
  }
})();
