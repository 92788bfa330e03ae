/**
 * The inspector page's script: lists /api/requests (polled each second while the tab is
 * visible), shows one in detail, and replays it. Everything from the API goes in through
 * textContent: paths, headers and bodies are whatever clients sent.
 */
interface CapturedBody {
  base64: string;
  bytes: number;
  truncated: boolean;
}
interface CapturedRequest {
  id: string;
  endpointId: string;
  startedAt: string;
  durationMs: number;
  method: string;
  path: string;
  status: number;
  requestHeaders: Record<string, string[]>;
  responseHeaders: Record<string, string[]>;
  requestBody: CapturedBody;
  responseBody: CapturedBody;
  replayOf?: string;
  error?: string;
}

(() => {
  const POLL_MS = 1000;
  const byId = <T extends HTMLElement>(id: string): T => {
    const el = document.getElementById(id);
    if (el === null) throw new Error(`the page has no #${id}`);
    return el as T;
  };
  const connection = byId('connection');
  const replayButton = byId<HTMLButtonElement>('replay');
  let requests: CapturedRequest[] = [];
  let selected: string | undefined;
  let timer: number | undefined;

  const el = <K extends keyof HTMLElementTagNameMap>(tag: K, text: string, className?: string): HTMLElementTagNameMap[K] => {
    const node = document.createElement(tag);
    node.textContent = text;
    if (className !== undefined) node.className = className;
    return node;
  };

  /** The body as text when it decodes as UTF-8 without control bytes, else its size. */
  function bodyText(body: CapturedBody): string {
    if (body.bytes === 0) return '(empty)';
    const bytes = Uint8Array.from(atob(body.base64), (c) => c.charCodeAt(0));
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch {
      return `(${body.bytes} bytes of binary data)`;
    }
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u0008\u000e-\u001f]/.test(text)) return `(${body.bytes} bytes of binary data)`;
    return body.truncated ? `${text}\n… (${body.bytes} bytes in all; the rest was not kept)` : text;
  }

  function headerRows(table: HTMLTableElement, headers: Record<string, string[]>): void {
    table.tBodies[0]!.replaceChildren(
      ...Object.entries(headers).flatMap(([name, values]) =>
        values.map((v) => {
          const tr = document.createElement('tr');
          tr.append(el('td', name), el('td', v));
          return tr;
        }),
      ),
    );
  }

  function renderList(): void {
    byId('requests-empty').hidden = requests.length > 0;
    byId('requests').replaceChildren(
      ...requests.map((r) => {
        const li = document.createElement('li');
        li.dataset['id'] = r.id;
        if (r.id === selected) li.className = 'selected';
        const button = document.createElement('button');
        button.type = 'button';
        const status = el('span', String(r.status), `status s${String(r.status).charAt(0)}`);
        const path = el('span', r.path, 'path');
        if (r.replayOf !== undefined) path.append(el('span', 'replay', 'tag'));
        button.append(el('span', r.method, 'method'), path, status, el('span', `${r.durationMs} ms`, 'muted'));
        button.addEventListener('click', () => select(r.id));
        li.append(button);
        return li;
      }),
    );
  }

  function renderDetail(): void {
    const r = requests.find((x) => x.id === selected);
    const detail = byId('detail');
    detail.hidden = r === undefined;
    if (r === undefined) return;
    byId('detail-title').textContent = `${r.method} ${r.path} → ${r.status}`;
    const when = new Date(r.startedAt).toLocaleTimeString();
    byId('detail-meta').textContent =
      `${r.endpointId} · ${when} · ${r.durationMs} ms${r.replayOf === undefined ? '' : ' · replay'}${r.error === undefined ? '' : ` · ${r.error}`}`;
    headerRows(byId<HTMLTableElement>('request-headers'), r.requestHeaders);
    headerRows(byId<HTMLTableElement>('response-headers'), r.responseHeaders);
    byId('request-body').textContent = bodyText(r.requestBody);
    byId('response-body').textContent = bodyText(r.responseBody);
    replayButton.disabled = r.requestBody.truncated;
    replayButton.title = r.requestBody.truncated ? 'The body was not kept whole, so it cannot be replayed' : '';
  }

  function select(id: string): void {
    selected = id;
    byId('replay-error').hidden = true;
    renderList();
    renderDetail();
  }

  async function refresh(): Promise<void> {
    timer = undefined;
    try {
      const res = await fetch('/api/requests', { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(5000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      requests = ((await res.json()) as { requests: CapturedRequest[] }).requests;
      if (selected === undefined && requests[0] !== undefined) selected = requests[0].id;
      renderList();
      renderDetail();
      connection.textContent = 'live';
      connection.className = 'badge live';
    } catch (err) {
      connection.textContent = `unreachable (${err instanceof Error ? err.message : String(err)})`;
      connection.className = 'badge down';
    }
    if (!document.hidden) timer = window.setTimeout(() => void refresh(), POLL_MS);
  }

  replayButton.addEventListener('click', () => {
    if (selected === undefined) return;
    replayButton.disabled = true;
    void (async () => {
      try {
        const res = await fetch(`/api/requests/${encodeURIComponent(selected!)}/replay`, {
          method: 'POST',
          headers: { 'x-piko-inspector': 'replay' },
          signal: AbortSignal.timeout(60_000),
        });
        const body = (await res.json()) as CapturedRequest | { error: string };
        if (!res.ok || !('id' in body)) throw new Error('error' in body ? body.error : `HTTP ${res.status}`);
        requests = [body, ...requests.filter((r) => r.id !== body.id)];
        select(body.id);
      } catch (err) {
        const error = byId('replay-error');
        error.textContent = `Replay failed: ${err instanceof Error ? err.message : String(err)}`;
        error.hidden = false;
      } finally {
        renderDetail();
      }
    })();
  });
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && timer === undefined) void refresh();
  });
  void refresh();
})();
