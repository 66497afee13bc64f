// Sends a fixed set of Segment-spec events to an otklik server with the
// official Segment Node SDK (@segment/analytics-node).
//
// Usage: node send.mjs <host> <writeKey>
//   host: base URL including scheme, e.g. http://127.0.0.1:8000
//
// Prints one JSON line: {"sent": 6, "delivered": N, "errors": [...], "messages": [...]}
// ("messages": type, messageId and event name of each delivered call, as the SDK made
// them) and exits non-zero if the SDK reported any error or not every event was delivered.
import { Analytics } from '@segment/analytics-node'

const [host, writeKey] = process.argv.slice(2)
if (!host || !writeKey) {
  console.error('usage: node send.mjs <host> <writeKey>')
  process.exit(2)
}

const analytics = new Analytics({
  writeKey,
  host, // scheme + host[:port]; the SDK joins it with `path` via new URL(path, host)
  path: '/v1/batch',
  flushAt: 20, // > number of events below, so everything goes out in one batch on close
  flushInterval: 10000,
  maxRetries: 2,
  httpRequestTimeout: 10000,
})

const errors = []
const messages = []
let delivered = 0
analytics.on('error', (err) => {
  errors.push({
    code: err?.code ?? 'unknown',
    reason: String(err?.reason?.message ?? err?.reason ?? err),
    type: err?.ctx?.event?.type,
  })
})
for (const type of ['identify', 'track', 'page', 'group', 'alias']) {
  analytics.on(type, (ctx) => {
    delivered += 1
    const event = ctx?.event ?? {}
    messages.push({ type: event.type, messageId: event.messageId, event: event.event ?? null })
  })
}

const userId = 'node-user-1'
const timestamp = new Date('2026-11-01T12:00:00.000Z') // as an import would set it
analytics.identify({
  userId,
  traits: { email: 'Node.User@Example.com', name: 'Нода', plan: 'pro' },
  timestamp,
})
analytics.track({
  userId,
  event: 'Order Completed',
  timestamp,
  properties: {
    order_id: 'n-1',
    revenue: 12.5,
    currency: 'RUB',
    products: [{ sku: 's1', quantity: 1, price: 12.5 }],
  },
})
analytics.page({ userId, name: 'Home', properties: { url: 'http://127.0.0.1/' } })
analytics.group({ userId, groupId: 'g-1', traits: { name: 'ACME' } })
analytics.alias({ userId, previousId: 'node-anon-1' })
analytics.track({ anonymousId: 'node-anon-2', event: 'Anonymous Event', properties: { n: 1 } })
const sent = 6

// closeAndFlush resolves (silently) on timeout too, so "delivered" is checked below.
await analytics.closeAndFlush({ timeout: 20000 })

if (delivered < sent && errors.length === 0) {
  errors.push({ code: 'not_delivered', reason: `${sent - delivered} event(s) not delivered` })
}
console.log(JSON.stringify({ sent, delivered, errors, messages }))
process.exitCode = errors.length ? 1 : 0
