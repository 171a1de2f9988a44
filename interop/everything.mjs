// Drives the reference "everything" server through tracegate with the
// official TypeScript SDK client, feature by feature, and prints one JSON
// object: {"checks":[{"name","ok","detail"}]}. The Go test runs it once per
// backend transport and fails on any check that is not ok.
//
//   node everything.mjs URL PREFIX        every feature, one client
//   node everything.mjs --pair URL PREFIX two clients sampling at once
//
// PREFIX is how the gateway names the backend's tools and prompts
// ("sehttp_" at /mcp with the default name format).

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
} from "@modelcontextprotocol/sdk/types.js";

const args = process.argv.slice(2);
const pair = args[0] === "--pair";
if (pair) args.shift();
const [url, prefix] = args;

const checks = [];
function check(name, ok, detail) {
  checks.push({ name, ok: !!ok, detail: detail === undefined ? "" : String(detail).slice(0, 400) });
}
async function attempt(name, fn) {
  try {
    const detail = await fn();
    if (detail !== false) check(name, true, detail);
  } catch (e) {
    check(name, false, e && e.message ? e.message : e);
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(pred, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (pred()) return true;
    await sleep(50);
  }
  return pred();
}

// newClient connects a client that answers sampling with `said`,
// elicitation with a form answer, and roots with one root.
async function newClient(said) {
  const client = new Client(
    { name: "tracegate-everything-" + said, version: "1.0.0" },
    { capabilities: { sampling: {}, elicitation: { form: {} }, roots: { listChanged: true } } },
  );
  client.logs = [];
  client.updates = [];
  client.samplings = 0;
  client.roots = [{ uri: "file:///tmp/tracegate-" + said, name: said }];
  client.setRequestHandler(CreateMessageRequestSchema, async () => {
    client.samplings++;
    return { role: "assistant", content: { type: "text", text: "sampled by " + said }, model: "test-model", stopReason: "endTurn" };
  });
  client.setRequestHandler(ElicitRequestSchema, async () => ({
    action: "accept",
    content: { name: "Ada", check: true, integer: 7, number: 1.5, enum: "option1", untitledSingleSelectEnum: "option1" },
  }));
  client.setRequestHandler(ListRootsRequestSchema, async () => ({ roots: client.roots }));
  client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => client.logs.push(n.params));
  client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => client.updates.push(n.params.uri));
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

const text = (res) => (res.content || []).filter((c) => c.type === "text").map((c) => c.text).join("\n");

async function everything() {
  const c = await newClient("solo");
  const tool = (n, a = {}, opts) => c.callTool({ name: prefix + n, arguments: a }, undefined, opts);

  await attempt("tools/list", async () => {
    const { tools } = await c.listTools();
    const names = tools.map((t) => t.name);
    for (const want of ["echo", "get-sum", "trigger-sampling-request", "trigger-elicitation-request", "get-roots-list"]) {
      if (!names.includes(prefix + want)) throw new Error("missing " + prefix + want + " in " + names.join(","));
    }
    return names.length + " tools";
  });
  await attempt("tool echo", async () => {
    const t = text(await tool("echo", { message: "héllo \"quoted\"" }));
    if (!t.includes("héllo \"quoted\"")) throw new Error(t);
  });
  await attempt("tool get-sum", async () => {
    const t = text(await tool("get-sum", { a: 2, b: 40 }));
    if (!t.includes("42")) throw new Error(t);
  });
  await attempt("tool get-tiny-image", async () => {
    const res = await tool("get-tiny-image");
    if (!res.content.some((x) => x.type === "image" && x.data.length > 100)) throw new Error(JSON.stringify(res).slice(0, 200));
  });
  await attempt("tool get-annotated-message", async () => {
    const res = await tool("get-annotated-message", { messageType: "error", includeImage: true });
    if (!res.content.some((x) => x.annotations)) throw new Error("no annotations");
  });
  await attempt("tool get-resource-links", async () => {
    const res = await tool("get-resource-links", { count: 2 });
    if (res.content.filter((x) => x.type === "resource_link").length !== 2) throw new Error(JSON.stringify(res.content).slice(0, 200));
  });
  await attempt("tool get-resource-reference", async () => {
    const res = await tool("get-resource-reference", { resourceType: "Text", resourceId: 3 });
    if (!res.content.some((x) => x.type === "resource")) throw new Error(JSON.stringify(res.content).slice(0, 200));
  });
  await attempt("tool get-structured-content", async () => {
    const res = await tool("get-structured-content", { location: "New York" });
    if (!res.structuredContent || typeof res.structuredContent.temperature !== "number") throw new Error(JSON.stringify(res).slice(0, 200));
  });
  await attempt("tool get-env", async () => {
    const res = await tool("get-env");
    if (!text(res)) throw new Error("empty");
  });
  await attempt("tool gzip-file-as-resource", async () => {
    const res = await tool("gzip-file-as-resource", { name: "hello.txt.gz", data: "data:text/plain;base64,aGVsbG8gd29ybGQ=", outputType: "resource" });
    if (res.isError || !res.content.some((x) => x.type === "resource")) throw new Error(JSON.stringify(res).slice(0, 200));
  });
  await attempt("progress", async () => {
    const progress = [];
    const res = await tool("trigger-long-running-operation", { duration: 1, steps: 3 }, { onprogress: (p) => progress.push(p.progress) });
    if (progress.length < 2) throw new Error("progress notifications: " + JSON.stringify(progress));
    return text(res).slice(0, 80) + " after " + progress.length + " progress notifications";
  });
  await attempt("sampling", async () => {
    const t = text(await tool("trigger-sampling-request", { prompt: "hi", maxTokens: 10 }));
    if (!t.includes("sampled by solo")) throw new Error(t);
  });
  await attempt("elicitation", async () => {
    const t = text(await tool("trigger-elicitation-request"));
    if (!t.includes("Ada")) throw new Error(t);
  });
  await attempt("roots", async () => {
    const t = text(await tool("get-roots-list"));
    if (!t.includes("tracegate-solo")) throw new Error(t);
  });
  await attempt("roots list_changed", async () => {
    c.roots = [{ uri: "file:///tmp/tracegate-changed", name: "changed" }];
    await c.sendRootsListChanged();
    let t = "";
    await until(() => false, 500);
    t = text(await tool("get-roots-list"));
    if (!t.includes("tracegate-changed")) throw new Error(t);
  });
  await attempt("cancellation", async () => {
    const ac = new AbortController();
    const started = Date.now();
    setTimeout(() => ac.abort("the test gave up"), 300);
    try {
      await tool("trigger-long-running-operation", { duration: 5, steps: 5 }, { signal: ac.signal });
      throw new Error("the call finished");
    } catch (e) {
      if (Date.now() - started > 3000) throw new Error("cancellation took " + (Date.now() - started) + "ms");
    }
    // The session still serves calls.
    const t = text(await tool("echo", { message: "after" }));
    if (!t.includes("after")) throw new Error(t);
  });

  await attempt("prompts", async () => {
    const { prompts } = await c.listPrompts();
    const simple = await c.getPrompt({ name: prefix + "simple-prompt" });
    if (!simple.messages.length) throw new Error("simple-prompt has no messages");
    const withArgs = await c.getPrompt({ name: prefix + "args-prompt", arguments: { city: "Lisbon", state: "LX" } });
    if (!JSON.stringify(withArgs.messages).includes("Lisbon")) throw new Error(JSON.stringify(withArgs).slice(0, 200));
    return prompts.length + " prompts";
  });
  await attempt("completion", async () => {
    const res = await c.complete({ ref: { type: "ref/prompt", name: prefix + "completable-prompt" }, argument: { name: "department", value: "En" } });
    if (!res.completion.values.includes("Engineering")) throw new Error(JSON.stringify(res));
  });
  await attempt("resources", async () => {
    const { resources } = await c.listResources();
    const { resourceTemplates } = await c.listResourceTemplates();
    if (!resources.length || !resourceTemplates.length) throw new Error(resources.length + " resources, " + resourceTemplates.length + " templates");
    const read = await c.readResource({ uri: "demo://resource/dynamic/text/1" });
    if (!read.contents.length) throw new Error("no contents");
    const blob = await c.readResource({ uri: "demo://resource/dynamic/blob/2" });
    if (!blob.contents[0].blob) throw new Error("no blob");
    return resources.length + " resources";
  });
  await attempt("resource subscription", async () => {
    const uri = "demo://resource/dynamic/text/1";
    await c.subscribeResource({ uri });
    await tool("toggle-subscriber-updates");
    const ok = await until(() => c.updates.includes(uri), 8000);
    await tool("toggle-subscriber-updates");
    await c.unsubscribeResource({ uri });
    if (!ok) throw new Error("no notifications/resources/updated for " + uri);
  });
  await attempt("logging", async () => {
    await c.setLoggingLevel("debug");
    await tool("toggle-simulated-logging");
    const ok = await until(() => c.logs.length > 0, 8000);
    await tool("toggle-simulated-logging");
    if (!ok) throw new Error("no log message");
    return c.logs.length + " log messages";
  });
  await c.close();
}

async function twoSampling() {
  const a = await newClient("alpha");
  const b = await newClient("beta");
  await attempt("two clients sampling at once", async () => {
    const call = (c) => c.callTool({ name: prefix + "trigger-sampling-request", arguments: { prompt: "who", maxTokens: 5 } });
    const [ra, rb] = await Promise.all([call(a), call(b)]);
    if (!text(ra).includes("sampled by alpha") || !text(rb).includes("sampled by beta")) {
      throw new Error("alpha got: " + text(ra).slice(0, 120) + " | beta got: " + text(rb).slice(0, 120));
    }
  });
  await a.close();
  await b.close();
}

try {
  await (pair ? twoSampling() : everything());
} catch (e) {
  check("connect", false, e && e.message ? e.message : e);
}
console.log(JSON.stringify({ checks }));
process.exit(0);
