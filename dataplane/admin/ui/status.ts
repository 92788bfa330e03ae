/**
 * The status page's script: long-polls /status/overview (each answer carries a version; asking
 * with `since` it waits for the next change) and redraws. Every value from the server goes in
 * through textContent, never as HTML: endpoint and node IDs come from agents and pods. Nothing
 * is asked while the tab is hidden. With admin auth the page asks for the token once and sends it
 * as a bearer header: a browser has no other way to, and a token in the URL would end up in logs.
 */
// Declared in ../status-overview-json.d.ts, which the server builds its answer to.
type Overview = StatusOverviewJson.Answer;
type OverviewEndpoint = StatusOverviewJson.Endpoint;

(() => {
  /** After a failed request; a successful one is followed by the next long poll at once. */
  const RETRY_MS = 1000;
  /** The server holds a long poll at most 5 s. */
  const REQUEST_TIMEOUT_MS = 15_000;
  const byId = <T extends HTMLElement>(id: string): T => {
    const el = document.getElementById(id);
    if (el === null) throw new Error(`the page has no #${id}`);
    return el as T;
  };
  const search = byId<HTMLInputElement>('search');
  const login = byId<HTMLFormElement>('login');
  const tokenInput = byId<HTMLInputElement>('token');
  /** With admin auth, the bearer token the person typed; kept for this tab only, never in a URL. */
  const TOKEN_KEY = 'piko-admin-token';
  const connection = byId('connection');
  let timer: number | undefined;
  let inFlight: AbortController | undefined;
  let version: number | undefined;

  const cell = (text: string, className?: string): HTMLTableCellElement => {
    const td = document.createElement('td');
    td.textContent = text;
    if (className !== undefined) td.className = className;
    return td;
  };

  const duration = (s: number): string => {
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
    if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
    return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
  };

  const rate = (rps: number): string => (rps >= 100 ? rps.toFixed(0) : rps >= 10 ? rps.toFixed(1) : rps.toFixed(2));
  const ms = (v: number): string =>
    v >= 1000 ? `${(v / 1000).toFixed(v >= 10_000 ? 0 : 1)}s` : v >= 10 ? `${v.toFixed(0)}ms` : `${v.toFixed(1)}ms`;
  const percent = (share: number): string => (share === 0 ? '0%' : share < 0.001 ? '<0.1%' : `${(share * 100).toFixed(1)}%`);

  function render(o: Overview): void {
    byId('node-id').textContent = o.node.id;
    byId('tunnels').textContent = String(o.node.tunnels);
    byId('endpoint-count').textContent = String(o.endpoints.length + o.endpoints_omitted);
    byId('node-count').textContent = String(o.nodes.length);
    byId('uptime').textContent = duration(o.node.uptime_seconds);

    const endpoints = byId<HTMLTableElement>('endpoints').tBodies[0]!;
    endpoints.replaceChildren(
      ...o.endpoints.map((e) => {
        const tr = document.createElement('tr');
        tr.dataset['endpoint'] = e.id;
        const name = cell('');
        const code = document.createElement('code');
        code.textContent = e.id;
        name.append(code);
        const pods = cell('');
        for (const n of e.nodes) {
          const span = document.createElement('span');
          span.className = 'pod';
          span.textContent = `${n.id} ×${n.upstreams}`;
          pods.append(span);
        }
        const t = e.traffic;
        tr.append(
          name,
          cell(String(e.upstreams), 'num'),
          pods,
          cell(t === undefined ? '–' : rate(t.rps), 'num rps'),
          cell(t === undefined ? '–' : percent(t.error_rate), t !== undefined && t.error_rate > 0 ? 'num errors bad' : 'num errors'),
          cell(t === undefined ? '–' : `${ms(t.p50_ms)} / ${ms(t.p95_ms)} / ${ms(t.p99_ms)}`, 'num latency'),
        );
        return tr;
      }),
    );
    byId('endpoints-empty').hidden = o.endpoints.length > 0;
    const omitted = byId('endpoints-omitted');
    omitted.hidden = o.endpoints_omitted === 0;
    omitted.textContent = `${o.endpoints_omitted} more not shown: search to narrow the list.`;
    byId('traffic-note').textContent = `Requests that came in through ${o.node.id}, over the last ${o.traffic_window_seconds}s.`;

    const nodes = byId<HTMLTableElement>('nodes').tBodies[0]!;
    nodes.replaceChildren(
      ...o.nodes.map((n) => {
        const tr = document.createElement('tr');
        tr.append(
          cell(n.local ? `${n.id} (this node)` : n.id),
          cell(n.status, `status-${n.status}`),
          cell(n.proxy_addr),
          cell(String(n.endpoints), 'num'),
          cell(String(n.upstreams), 'num'),
          cell(n.lease_age_seconds === undefined ? '–' : `${n.lease_age_seconds.toFixed(1)}s`, 'num'),
        );
        return tr;
      }),
    );

    const limits = Object.entries(o.limits_tripped);
    byId('limits').replaceChildren(
      ...limits.map(([name, count]) => {
        const li = document.createElement('li');
        const code = document.createElement('code');
        code.textContent = name;
        li.append(code, document.createTextNode(` ${count}`));
        return li;
      }),
    );
    byId('limits-none').hidden = limits.length > 0;
  }

  async function poll(): Promise<void> {
    timer = undefined;
    inFlight?.abort();
    const abort = new AbortController();
    inFlight = abort;
    const timeout = setTimeout(() => abort.abort(), REQUEST_TIMEOUT_MS);
    let next = RETRY_MS;
    try {
      const params = new URLSearchParams();
      const q = search.value.trim();
      if (q !== '') params.set('q', q);
      if (version !== undefined) params.set('since', String(version));
      const query = params.toString();
      const headers: Record<string, string> = { accept: 'application/json' };
      const token = sessionStorage.getItem(TOKEN_KEY);
      if (token !== null) headers['authorization'] = `Bearer ${token}`;
      const res = await fetch(`/status/overview${query === '' ? '' : `?${query}`}`, { signal: abort.signal, headers });
      if (res.status === 401) {
        // Asked for a token (again, if the one kept was refused): nothing more until one is typed.
        sessionStorage.removeItem(TOKEN_KEY);
        login.hidden = false;
        connection.textContent = token === null ? 'sign in' : 'token refused';
        connection.className = 'badge down';
        tokenInput.focus();
        return;
      }
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      login.hidden = true;
      const overview = (await res.json()) as Overview;
      version = overview.version;
      render(overview);
      connection.textContent = 'live';
      connection.className = 'badge live';
      next = 0;
    } catch (err) {
      // Replaced by a newer request (the search changed): that one carries on.
      if (abort.signal.aborted && inFlight !== abort) return;
      version = undefined;
      connection.textContent = `unreachable (${err instanceof Error ? err.message : String(err)})`;
      connection.className = 'badge down';
    } finally {
      clearTimeout(timeout);
    }
    schedule(next);
  }

  function schedule(afterMs: number): void {
    if (timer === undefined && !document.hidden) timer = window.setTimeout(() => void poll(), afterMs);
  }

  login.addEventListener('submit', (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, tokenInput.value.trim());
    tokenInput.value = '';
    version = undefined;
    void poll();
  });
  search.addEventListener('input', () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    // A new search is answered at once, not at the next change.
    version = undefined;
    void poll();
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && timer === undefined) void poll();
  });
  void poll();
})();
