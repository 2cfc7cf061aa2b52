/**
 * The environment `getaway run` gives the wrapped command so that its traffic goes through the audit proxy: the
 * variables curl, Go, Python, Node's undici and most CLIs read, plus the ones some tools read instead of them.
 * Pure: the parent's environment and the proxy's address in, the child's environment out.
 */

export interface ProxyEnvironmentOptions {
  /** http://127.0.0.1:PORT */
  proxyUrl: string;
  host: string;
  port: number;
}

/** Every variable that would send some destinations around the proxy: all removed, so the audit sees everything. */
const BYPASS_VARIABLES = ['NO_PROXY', 'no_proxy', 'npm_config_noproxy', 'NPM_CONFIG_NOPROXY'];

/**
 * The child's environment. HTTP(S)_PROXY and ALL_PROXY in both cases; NO_PROXY removed (an audit of a build wants
 * its loopback and internal calls too); npm's and pip's and cargo's own proxy settings; git's `http.proxy` through
 * GIT_CONFIG_COUNT/KEY_n/VALUE_n (added after any the parent set); JVM proxy properties appended to
 * JAVA_TOOL_OPTIONS. Anything else in the parent's environment passes unchanged.
 */
export function proxyEnvironment(parent: NodeJS.ProcessEnv, options: ProxyEnvironmentOptions): NodeJS.ProcessEnv {
  const { proxyUrl, host, port } = options;
  const env: NodeJS.ProcessEnv = { ...parent };
  for (const name of BYPASS_VARIABLES) delete env[name];
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy']) env[name] = proxyUrl;
  // npm reads its own config before HTTP(S)_PROXY; an .npmrc proxy would otherwise win.
  env['npm_config_proxy'] = proxyUrl;
  env['npm_config_https_proxy'] = proxyUrl;
  env['YARN_HTTP_PROXY'] = proxyUrl;
  env['YARN_HTTPS_PROXY'] = proxyUrl;
  env['PIP_PROXY'] = proxyUrl;
  env['CARGO_HTTP_PROXY'] = proxyUrl;
  // git's environment-given config: entries numbered from the count the parent already uses.
  const existing = Number(parent['GIT_CONFIG_COUNT'] ?? '0');
  const index = Number.isInteger(existing) && existing >= 0 ? existing : 0;
  env[`GIT_CONFIG_KEY_${index}`] = 'http.proxy';
  env[`GIT_CONFIG_VALUE_${index}`] = proxyUrl;
  env['GIT_CONFIG_COUNT'] = String(index + 1);
  // JVM system properties, appended so the parent's options stay; they hold no secret and change only the proxy.
  const jvm = ['http', 'https'].map((scheme) => `-D${scheme}.proxyHost=${host} -D${scheme}.proxyPort=${port}`).join(' ');
  env['JAVA_TOOL_OPTIONS'] = parent['JAVA_TOOL_OPTIONS'] ? `${parent['JAVA_TOOL_OPTIONS']} ${jvm}` : jvm;
  return env;
}
