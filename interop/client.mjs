// A TypeScript-SDK MCP client for tracegate's interop tests. It connects
// over Streamable HTTP, lists the tools, makes the calls it is given and
// prints one JSON object on stdout.
//
//   node client.mjs URL [TOOL ARGS_JSON]...
//
// TRACEGATE_TOKEN, when set, is sent as a bearer token. A call that fails
// with a JSON-RPC error is reported with its code rather than ending the run.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, ...pairs] = process.argv.slice(2);
if (!url || pairs.length % 2 !== 0) {
  console.error("usage: node client.mjs URL [TOOL ARGS_JSON]...");
  process.exit(2);
}

const headers = {};
if (process.env.TRACEGATE_TOKEN) {
  headers.Authorization = `Bearer ${process.env.TRACEGATE_TOKEN}`;
}

const client = new Client({ name: "tracegate-interop", version: "1.0.0" });
const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
await client.connect(transport);

const out = {
  protocolVersion: transport.protocolVersion ?? null,
  server: client.getServerVersion() ?? null,
  sessionId: transport.sessionId ? "present" : "absent",
  tools: [],
  calls: [],
};

let cursor;
do {
  const page = await client.listTools(cursor ? { cursor } : {});
  out.tools.push(...page.tools.map((t) => t.name));
  cursor = page.nextCursor;
} while (cursor);
out.tools.sort();

for (let i = 0; i < pairs.length; i += 2) {
  const name = pairs[i];
  const args = JSON.parse(pairs[i + 1]);
  try {
    const res = await client.callTool({ name, arguments: args });
    out.calls.push({
      name,
      isError: res.isError === true,
      text: (res.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join(""),
      structuredContent: res.structuredContent ?? null,
    });
  } catch (err) {
    out.calls.push({ name, error: { code: err.code ?? null, message: String(err.message ?? err) } });
  }
}

await transport.terminateSession().catch(() => {});
await client.close();
process.stdout.write(JSON.stringify(out) + "\n");
