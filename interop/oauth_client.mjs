// A TypeScript-SDK MCP client that authorizes itself the way the MCP
// authorization specification describes, headless, for tracegate's interop
// tests: on 401 it discovers the protected resource metadata (RFC 9728) and
// the authorization server (RFC 8414), registers itself (RFC 7591), runs the
// authorization code flow with PKCE and a resource indicator (RFC 8707),
// then connects again with its token, lists the tools and calls one.
//
//   node oauth_client.mjs URL TOOL ARGS_JSON
//
// The authorization server of the tests approves at once; where a person
// would follow the redirect in a browser, this client follows it with fetch.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { UnauthorizedError } from "@modelcontextprotocol/sdk/client/auth.js";

const [url, tool, argsJSON] = process.argv.slice(2);
if (!url || !tool) {
  console.error("usage: node oauth_client.mjs URL TOOL ARGS_JSON");
  process.exit(2);
}

class HeadlessProvider {
  constructor() {
    this.redirects = 0;
  }
  get redirectUrl() {
    return "http://127.0.0.1:9/callback"; // never reached: the code is read from the redirect
  }
  get clientMetadata() {
    return {
      client_name: "tracegate interop (TypeScript SDK)",
      redirect_uris: [this.redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() {
    return this.client;
  }
  saveClientInformation(info) {
    this.client = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens) {
    this.saved = tokens;
  }
  saveCodeVerifier(v) {
    this.verifier = v;
  }
  codeVerifier() {
    return this.verifier;
  }
  async redirectToAuthorization(authorizationUrl) {
    this.redirects++;
    this.authorizationUrl = authorizationUrl;
    const res = await fetch(authorizationUrl, { redirect: "manual" });
    const location = res.headers.get("location");
    if (!location) {
      throw new Error(`authorization endpoint answered ${res.status} without a redirect`);
    }
    this.code = new URL(location).searchParams.get("code");
  }
}

const provider = new HeadlessProvider();
const open = () => {
  const client = new Client({ name: "tracegate-oauth-interop", version: "1.0.0" });
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  return { client, transport };
};

let { client, transport } = open();
let challenged = false;
try {
  await client.connect(transport);
} catch (err) {
  if (!(err instanceof UnauthorizedError)) throw err;
  challenged = true;
  await transport.finishAuth(provider.code);
  ({ client, transport } = open());
  await client.connect(transport);
}

const { tools } = await client.listTools();
const res = await client.callTool({ name: tool, arguments: JSON.parse(argsJSON ?? "{}") });
const auth = provider.authorizationUrl;
console.log(JSON.stringify({
  challenged,
  redirects: provider.redirects,
  registeredClient: provider.client?.client_id ?? null,
  authorization: auth ? {
    resource: auth.searchParams.get("resource"),
    scope: auth.searchParams.get("scope"),
    codeChallengeMethod: auth.searchParams.get("code_challenge_method"),
  } : null,
  tokenType: provider.saved?.token_type ?? null,
  tools: tools.map((t) => t.name).sort(),
  call: {
    isError: res.isError === true,
    text: (res.content ?? []).filter((c) => c.type === "text").map((c) => c.text).join(""),
  },
}));
await transport.terminateSession().catch(() => {});
await client.close();
