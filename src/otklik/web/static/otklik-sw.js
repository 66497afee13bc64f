/* Otklik service worker: copy to the root of your site. Shows Otklik's pushes and opens
 * their link (already a tracked click link) when the person clicks the notification. */
self.addEventListener("push", function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = { body: event.data && event.data.text() }; }
  event.waitUntil(self.registration.showNotification(data.title || "", {
    body: data.body || "",
    icon: data.icon || undefined,
    data: { url: data.url || "/" },
    tag: data.message_id || undefined,
  }));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = (event.notification.data && event.notification.data.url) || "/";
  event.waitUntil(clients.openWindow(url));
});
