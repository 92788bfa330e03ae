/**
 * The status page's script: long-polls /status/overview (each answer carries a version; asking
 * with `since` it waits for the next change) and redraws. Every value from the server goes in
 * through textContent, never as HTML: endpoint and node IDs come from agents and pods. Nothing
 * is asked while the tab is hidden.
 */
interface OverviewEndpoint {
  id: string;
  upstreams: number;
  nodes: { id: string; upstreams: number }[];
}
interface Overview {
  version: number;
  node: { id: string; uptime_seconds: number; tunnels: number };
  endpoints: OverviewEndpoint[];
  endpoints_omitted: number;
  nodes: { id: string; status: string; proxy_addr: string; admin_addr: string; endpoints: number; upstreams: number; local: boolean }[];
  limits_tripped: Record<string, number>;
}

(() => {
  /** After a failed request; a successful one is followed by the next long poll at once. */
  const RETRY_MS = 1000;
  /** The server holds a long poll at most 10 s. */
  const REQUEST_TIMEOUT_MS = 15_000;
  const byId = <T extends HTMLElement>(id: string): T => {
    const el = document.getElementById(id);
    if (el === null) throw new Error(`the page has no #${id}`);
    return el as T;
  };
  const search = byId<HTMLInputElement>('search');
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
        tr.append(name, cell(String(e.upstreams), 'num'), pods);
        return tr;
      }),
    );
    byId('endpoints-empty').hidden = o.endpoints.length > 0;
    const omitted = byId('endpoints-omitted');
    omitted.hidden = o.endpoints_omitted === 0;
    omitted.textContent = `${o.endpoints_omitted} more not shown: search to narrow the list.`;

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
      const res = await fetch(`/status/overview${query === '' ? '' : `?${query}`}`, {
        signal: abort.signal,
        headers: { accept: 'application/json' },
      });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
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
