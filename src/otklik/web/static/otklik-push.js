/*
 * Otklik web push for your site. Add to your pages:
 *
 *   <script src="https://YOUR-OTKLIK/static/otklik-push.js"
 *           data-otklik="https://YOUR-OTKLIK" data-write-key="WRITE_KEY"></script>
 *
 * and copy https://YOUR-OTKLIK/static/otklik-sw.js to the root of your site (a service
 * worker must come from your own origin). Then, from a click handler (browsers only let a
 * user gesture ask for permission):
 *
 *   otklikPush.subscribe({ userId: "42" })        // or anonymousId: analytics.user().anonymousId()
 *
 * It registers the service worker, asks the browser for a subscription with the
 * workspace's VAPID key, and sends it to Otklik, which binds it to that person.
 */
(function () {
  var script = document.currentScript;
  var base = (script && script.dataset.otklik) || "";
  var writeKey = (script && script.dataset.writeKey) || "";
  var swPath = (script && script.dataset.sw) || "/otklik-sw.js";

  function urlBase64ToUint8Array(text) {
    var padded = (text + "===".slice((text.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(padded);
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  }

  function post(path, body) {
    return fetch(base + path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(Object.assign({ writeKey: writeKey }, body)),
    }).then(function (r) {
      if (!r.ok) return r.json().then(function (e) { throw new Error(e.code + ": " + e.message); });
      return r.json();
    });
  }

  function supported() {
    return "serviceWorker" in navigator && "PushManager" in window && "Notification" in window;
  }

  function subscribe(who) {
    if (!supported()) return Promise.reject(new Error("push is not supported by this browser"));
    return fetch(base + "/v1/push/config?writeKey=" + encodeURIComponent(writeKey))
      .then(function (r) { return r.json(); })
      .then(function (config) {
        if (!config.vapid_public_key) throw new Error("web push is not set up");
        return navigator.serviceWorker.register(swPath).then(function (reg) {
          return reg.pushManager.getSubscription().then(function (existing) {
            return existing || reg.pushManager.subscribe({
              userVisibleOnly: true,
              applicationServerKey: urlBase64ToUint8Array(config.vapid_public_key),
            });
          });
        });
      })
      .then(function (subscription) {
        return post("/v1/push/subscriptions", Object.assign({ subscription: subscription.toJSON() }, who || {}));
      });
  }

  window.otklikPush = { supported: supported, subscribe: subscribe };
})();
