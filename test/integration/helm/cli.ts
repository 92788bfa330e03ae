/** Runs helm and kubectl for the chart tests, each with a private home so nothing of the user's leaks in. */
import { spawn } from 'node:child_process';
import * as path from 'node:path';

const TOOL_TIMEOUT_MS = 30_000;

export interface ToolResult {
  /** The exit code; 128 when a signal killed it. */
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `bin` to completion, never rejecting for a non-zero exit (tests assert on it). `home` is
 * HOME and Helm's cache, config and data dirs, so repositories, plugins and kubectl's discovery
 * cache are the test's own. Killed after 30 s.
 */
export function runTool(
  bin: string,
  args: readonly string[],
  opts: { home: string; input?: string; kubeconfig?: string },
): Promise<ToolResult> {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'] ?? '',
    HOME: opts.home,
    HELM_CACHE_HOME: path.join(opts.home, 'helm-cache'),
    HELM_CONFIG_HOME: path.join(opts.home, 'helm-config'),
    HELM_DATA_HOME: path.join(opts.home, 'helm-data'),
    // Without a kubeconfig of the test's, a file that does not exist: never the user's cluster.
    KUBECONFIG: opts.kubeconfig ?? path.join(opts.home, 'no-kubeconfig'),
  };
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), TOOL_TIMEOUT_MS);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal === null ? 1 : 128), stdout, stderr });
    });
    // A tool that exits without reading its input (most do) closes the pipe
    // first; EPIPE then says nothing the exit code does not.
    child.stdin.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') reject(err);
    });
    child.stdin.end(opts.input ?? '');
  });
}
