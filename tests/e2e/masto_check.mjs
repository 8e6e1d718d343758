// Drives Roundtable's client API with masto.js, the library Elk and Phanpy are built on
// (run by tests/e2e/test_clients.py: node masto_check.mjs MASTO_MODULE_PATH BASE_URL CUSTOMER ORGANIZATION).
const [mastoPath, base, customer, org] = process.argv.slice(2);
const { createRestAPIClient, createStreamingAPIClient } = await import(mastoPath);

const post = (path, body) => fetch(base + path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
}).then((r) => r.json());
const app = await post("/api/v1/apps", {
  client_name: "masto.js", redirect_uris: "urn:ietf:wg:oauth:2.0:oob", scopes: "read write follow push",
});
const token = async (username) => (await post("/oauth/token", {
  grant_type: "password", client_id: app.client_id, client_secret: app.client_secret, username,
  password: "password123", scope: "read write follow push",
})).access_token;
const orgApi = createRestAPIClient({ url: base, accessToken: await token(org) });
const customerApi = createRestAPIClient({ url: base, accessToken: await token(customer) });
const out = {};
const instance = await orgApi.v2.instance.fetch();
out.version = instance.version;
const streaming = createStreamingAPIClient({
  streamingApiUrl: instance.configuration.urls.streaming, accessToken: (await token(org)),
});
const quiet = streaming.hashtag.subscribe({ tag: "kettles" });  // must not end the socket's other subscriptions
const user = streaming.user.subscribe();
const events = [];
const reading = (async () => {
  for await (const event of user) {
    events.push(event.event);
    if (events.includes("update") && events.includes("notification")) break;
  }
})();
await new Promise((r) => setTimeout(r, 1000));
const me = await orgApi.v1.accounts.verifyCredentials();
out.org = me.acct;
// The socket may open (and subscribe) a little later on a busy machine: write again until the events come.
let dm = await customerApi.v1.statuses.create({ status: `@${org} my kettle leaks`, visibility: "direct" });
let done = false;
reading.then(() => { done = true; });
for (let tries = 0; !done && tries < 8; tries++) {
  await Promise.race([reading, new Promise((r) => setTimeout(r, 3000))]);
  if (!done && events.length === 0) {
    dm = await customerApi.v1.statuses.create({ status: `@${org} still leaking`, visibility: "direct" });
  }
}
if (!done) throw new Error("no live events");
out.events = [...new Set(events)].sort();
const conversations = await orgApi.v1.conversations.list();
out.conversationWith = conversations[0].accounts.map((a) => a.acct);
const answer = await orgApi.v1.statuses.create({ status: "A new one is on its way.", inReplyToId: dm.id,
  visibility: "direct" });
const context = await customerApi.v1.statuses.$select(answer.id).context.fetch();
out.ancestors = context.ancestors.map((s) => s.id === dm.id);
const grouped = await customerApi.v2.notifications.list();
out.grouped = grouped.notificationGroups.map((g) => g.type);
const home = await customerApi.v1.timelines.home.list({ limit: 5 });
out.home = home.map((s) => s.id).includes(answer.id);
const markers = await customerApi.v1.markers.create({ home: { lastReadId: answer.id } });
out.marker = markers.home.lastReadId === answer.id;
quiet.unsubscribe();
user.unsubscribe();
streaming.close();
console.log(JSON.stringify(out));
process.exit(0);
